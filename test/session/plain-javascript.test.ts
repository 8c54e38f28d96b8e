import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';

const APP = new URL('../fixtures/plain-js-app.mjs', import.meta.url).pathname;

test('an app in plain JavaScript, under plain node, imports clones from dist/ and keeps its session', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-plain-js-'));
  const child = spawn(process.execPath, [APP], {
    env: { ...process.env, SESSION_STORE: `sqlite:${join(dir, 'sessions.db')}`, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`the app exited with ${code} before listening`);
      }),
    ])) as [string];
    const [, port, resolved] = line.split(' ');
    assert.match(resolved!, /\/dist\/session\/index\.js$/, 'the compiled build, not the TypeScript sources');
    const browser = new CookieClient(`http://127.0.0.1:${port}`);
    assert.equal((await browser.post('/set?v=plain')).status, 200);
    assert.deepEqual((await browser.get('/get')).body, { v: 'plain' });
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
});
