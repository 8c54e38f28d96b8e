// A kill -9 of the process that drives the HAProxy engine leaves its haproxy serving, with nobody driving
// it; the next balancer on the same engine directory stops it before it starts its own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createBalancer } from '../../src/balancer/index.ts';
import { freePort } from '../harness/free-port.ts';
import { fetchText, silent, sleep, startUpstream, waitFor } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-leftover-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

test('HAProxy engine: the haproxy a SIGKILLed owner left is stopped by the next start on its directory', async () => {
  const oldUp = await startUpstream('old');
  const newUp = await startUpstream('new');
  const port = await freePort();
  const engineDir = join(dir, 'engine');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(import.meta.dirname, 'fixtures', 'haproxy-balancer.ts'),
      engineDir,
      String(port),
      oldUp.url,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  await waitFor(() => out.includes('ready'), 20_000);
  const master = Number(readFileSync(join(engineDir, 'haproxy.pid'), 'utf8'));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  await sleep(200);
  // What users saw before: the orphan keeps serving the old config.
  assert.ok(alive(master), 'the haproxy of the killed owner is still running');
  assert.equal((await fetchText(`http://127.0.0.1:${port}/`, { agent: false })).status, 200);

  const lb = createBalancer({
    engine: 'haproxy',
    engineDir,
    logger: silent,
    healthCheck: { enabled: false },
    targets: [{ id: 'new', url: newUp.url, release: 'new' }],
  });
  try {
    await lb.listen(port, '127.0.0.1');
    await waitFor(() => !alive(master), 10_000);
    for (let i = 0; i < 10; i++) {
      const r = await fetchText(`http://127.0.0.1:${port}/`, { agent: false });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-clones-clone'], 'new', 'only the new haproxy answers');
    }
  } finally {
    await lb.close();
    await oldUp.close();
    await newUp.close();
  }
});
