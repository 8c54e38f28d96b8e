import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { removeTree, startFleet } from '../../src/fleet/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-supervisor-'));
after(() => removeTree(dir));

// A clone that becomes ready, then dies 300 ms later, every time.
const CRASHER = `import { createServer } from 'node:http';
const server = createServer((req, res) => res.end('ok'));
server.listen(Number(process.env.PORT), '127.0.0.1');
setTimeout(() => process.exit(3), 300);
`;

test('a clone that keeps dying is restarted with backoff, then marked failed with the reason', async () => {
  const app = join(dir, 'crasher');
  mkdirSync(app);
  writeFileSync(join(app, 'server.mjs'), CRASHER);
  const up = await startFleet({
    appDir: app,
    home: join(dir, '.clones'),
    clones: 1,
    port: 0,
    env: { PATH: process.env.PATH },
    logger: pino({ level: 'silent' }),
    supervisor: { initialBackoff: 20, crashLoopExits: 10, stopGrace: 1000 },
  });
  try {
    const starts: number[] = [];
    let failed: ReturnType<typeof up.fleet.status>['clones'][number] | undefined;
    const deadline = Date.now() + 30_000;
    let lastPid: number | null = null;
    while (Date.now() < deadline) {
      const clone = up.fleet.status().clones[0];
      if (clone && clone.pid !== lastPid) {
        lastPid = clone.pid;
        starts.push(Date.now());
      }
      if (clone?.state === 'failed') {
        failed = clone;
        break;
      }
      await sleep(10);
    }
    assert.ok(failed, 'marked failed');
    assert.match(failed.reason ?? '', /crash loop: 10 exits within 60 s/);
    assert.ok(failed.restarts >= 8, `restarts ${failed.restarts}`);
    // Backoff grows: the later gaps between starts are longer than the first ones.
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    assert.ok(gaps.at(-1)! > gaps[0]!, `gaps ${gaps.join(', ')}`);
  } finally {
    await up.stop();
  }
});
