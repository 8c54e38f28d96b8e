import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { removeTree, startFleet } from '../../src/fleet/index.ts';
import { memoryLogger } from '../harness/memory-logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-supervisor-'));
after(() => removeTree(dir));

// A clone that becomes ready, then dies 300 ms later, every time.
const CRASHER = `import { createServer } from 'node:http';
const server = createServer((req, res) => res.end('ok'));
server.listen(Number(process.env.PORT), '127.0.0.1');
setTimeout(() => process.exit(3), 300);
`;

/** One clone of `source` as `app/server.mjs` under a fleet of its own; the caller stops it. */
async function startApp(name: string, source: string, options: Partial<Parameters<typeof startFleet>[0]>) {
  const app = join(dir, name);
  mkdirSync(app);
  writeFileSync(join(app, 'server.mjs'), source);
  return startFleet({
    appDir: app,
    home: join(dir, `.clones-${name}`),
    clones: 1,
    port: 0,
    env: { PATH: process.env.PATH },
    logger: pino({ level: 'silent' }),
    ...options,
  });
}

test('a clone that keeps dying is restarted with backoff, then marked failed with the reason', async () => {
  const up = await startApp('crasher', CRASHER, {
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

// /up answers 200 once (the supervisor's readiness probe, the first to ask), then 503 (the balancer's checks,
// which start once the clone is added): a clone whose health flaps right after it started.
const FLAPPING = `import { createServer } from 'node:http';
let checks = 0;
createServer((req, res) => {
  if (req.url === '/up') res.statusCode = ++checks === 1 ? 200 : 503;
  res.end(res.statusCode === 200 ? 'ok' : 'not now');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

test('a clone ready for the supervisor but unhealthy for the balancer is logged as getting no traffic', async () => {
  const { logger, records } = memoryLogger('warn');
  const up = await startApp('flapping', FLAPPING, {
    logger,
    balancer: { healthCheck: { interval: 200 } },
    supervisor: { readyTimeout: 1000 },
  });
  try {
    const warned = records.find((l) => /does not count it healthy/.test(String(l.msg)));
    assert.ok(warned, `warnings: ${JSON.stringify(records.map((r) => r.msg))}`);
    assert.equal(warned.clone, 'c1');
    assert.equal(warned.health, 'unhealthy');
    // Still registered: it gets traffic once the balancer's checks pass.
    assert.equal(up.fleet.balancer.target('c1')?.health, 'unhealthy');
  } finally {
    await up.stop();
  }
});
