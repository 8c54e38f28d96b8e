// A clone that answers its health path to the supervisor but fails the balancer's own checks: it stays
// registered, and the log says why it gets no traffic (before, the wait ran out in silence).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import pino from 'pino';
import { removeTree, startFleet } from '../../src/fleet/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-register-'));
after(() => removeTree(dir));

// /up answers 200 once (the supervisor's readiness probe, the first to ask), then 503 (the balancer's checks,
// which start once the clone is added): a clone whose health flaps right after it started.
const APP = `import { createServer } from 'node:http';
let checks = 0;
createServer((req, res) => {
  if (req.url === '/up') res.statusCode = ++checks === 1 ? 200 : 503;
  res.end(res.statusCode === 200 ? 'ok' : 'not now');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

test('a clone ready for the supervisor but unhealthy for the balancer is logged as getting no traffic', async () => {
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'server.mjs'), APP);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  const up = await startFleet({
    appDir: app,
    home: join(dir, '.clones'),
    clones: 1,
    port: 0,
    env: { PATH: process.env.PATH },
    logger: pino({ level: 'warn' }, sink),
    balancer: { healthCheck: { interval: 200 } },
    supervisor: { readyTimeout: 1000 },
  });
  try {
    const warned = lines.find((l) => /does not count it healthy/.test(String(l.msg)));
    assert.ok(warned, `warnings: ${JSON.stringify(lines.map((l) => l.msg))}`);
    assert.equal(warned.clone, 'c1');
    assert.equal(warned.health, 'unhealthy');
    // Still registered: it gets traffic once the balancer's checks pass.
    assert.equal(up.fleet.balancer.target('c1')?.health, 'unhealthy');
  } finally {
    await up.stop();
  }
});
