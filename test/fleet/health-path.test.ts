// The health path is configurable (`--health-path`, clones.json `healthPath`, forwarded to host agents),
// and a clone that never gets ready says what its health path answered. Small plain-JavaScript apps (no
// tsx), real `clones up` processes and a real host agent; each app counts the requests it gets by path and
// user-agent, so the test sees who checked what.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient } from '../../src/fleet/agent-client.ts';
import { fleetPaths } from '../../src/fleet/fleet-paths.ts';
import { agentFiles } from '../../src/fleet/host-agent.ts';
import { buildRelease, removeTree } from '../../src/fleet/release.ts';
import { freePort } from '../harness/free-port.ts';
import { cliAsync, startUp } from './fleet-harness.ts';

/** Serves `/healthz` only (no `/up`: a 404 page as Express writes it); `/hits` gives the counts. */
const HEALTHZ_ONLY = `import { createServer } from 'node:http';
const hits = {};
createServer((req, res) => {
  const key = req.url + ' ' + (req.headers['user-agent'] ?? '');
  hits[key] = (hits[key] ?? 0) + 1;
  if (req.url === '/healthz') return res.end('ok');
  if (req.url === '/hits') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(hits));
  }
  if (req.url === '/') return res.end('hello');
  res.statusCode = 404;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end('<!DOCTYPE html>\\n<html lang="en">\\n<head>\\n<meta charset="utf-8">\\n<title>Error</title>\\n</head>\\n<body>\\n<pre>Cannot GET ' + req.url + '</pre>\\n</body>\\n</html>\\n');
}).listen(Number(process.env.PORT), process.env.HOST);
`;
/** Up, but its database is not: `/up` answers 503 "db down" forever. */
const DB_DOWN = `import { createServer } from 'node:http';
createServer((req, res) => {
  res.statusCode = req.url === '/up' ? 503 : 200;
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/up' ? 'db down\\n' : 'hello');
}).listen(Number(process.env.PORT), process.env.HOST);
`;
/** Runs, never listens. */
const NEVER_LISTENS = `setInterval(() => {}, 1000);
`;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) removeTree(d);
});

/** A temp dir holding `shop/server.mjs` (and `shop/clones.json` when given). */
function appDir(server: string, config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'clones-health-path-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'shop'));
  writeFileSync(join(dir, 'shop', 'server.mjs'), server);
  if (config !== undefined) writeFileSync(join(dir, 'shop', 'clones.json'), JSON.stringify(config));
  return dir;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Up with the health path, serving through the balancer, and checked on it (never on /up) by both sides. */
async function assertUpOnHealthz(dir: string, args: string[]): Promise<void> {
  const up = await startUp(dir, ['--clones', '1', '--ready-timeout', '10s', ...args]);
  try {
    const home = await get(up.port, '/');
    assert.equal(home.status, 200, up.output());
    assert.equal(home.body, 'hello');
    const hits = JSON.parse((await get(up.port, '/hits')).body) as Record<string, number>;
    assert.ok(
      (hits['/healthz clones-ready'] ?? 0) >= 1,
      `the readiness gate checked /healthz: ${JSON.stringify(hits)}`,
    );
    assert.ok(
      (hits['/healthz clones-balancer-health'] ?? 0) >= 1,
      `the balancer checked /healthz: ${JSON.stringify(hits)}`,
    );
    assert.deepEqual(
      Object.keys(hits).filter((k) => k.startsWith('/up')),
      [],
      'nobody checked /up',
    );
  } finally {
    assert.equal(await up.stop(), 0, up.output());
  }
}

test('an app that serves only /healthz comes up with --health-path /healthz; both checks use it', async () => {
  await assertUpOnHealthz(appDir(HEALTHZ_ONLY), ['--health-path', '/healthz']);
});

test('clones.json "healthPath" does the same, and --health-path wins over it', async () => {
  await assertUpOnHealthz(appDir(HEALTHZ_ONLY, { healthPath: '/healthz' }), []);
  await assertUpOnHealthz(appDir(HEALTHZ_ONLY, { healthPath: '/nowhere' }), ['--health-path', '/healthz']);
});

test('a health path that is not a path is refused with a coded error naming where it came from', async () => {
  const flag = await cliAsync(appDir(HEALTHZ_ONLY), [
    'up',
    'shop',
    '--port',
    '0',
    '--health-path',
    'healthz',
  ]);
  assert.equal(flag.code, 1, flag.stderr);
  assert.match(flag.stderr, /CLONES_FLEET_HEALTH_PATH/);
  assert.match(flag.stderr, /--health-path: "healthz" is not a health path: it must start with "\/"/);
  const file = await cliAsync(appDir(HEALTHZ_ONLY, { healthPath: '/health z' }), [
    'up',
    'shop',
    '--port',
    '0',
  ]);
  assert.equal(file.code, 1, file.stderr);
  assert.match(file.stderr, /CLONES_FLEET_HEALTH_PATH/);
  assert.match(file.stderr, /clones\.json healthPath: "\/health z" is not a health path/);
});

/** `clones up` of an app that never gets ready, with one clone and a 2 s ready timeout: its stderr. */
async function notReady(server: string): Promise<string> {
  const args = ['up', 'shop', '--port', '0', '--clones', '1', '--ready-timeout', '2s'];
  const r = await cliAsync(appDir(server), args);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /CLONES_FLEET_CLONE_FAILED/);
  return r.stderr;
}

test('an app whose /up answers 503 "db down": clones up fails saying so, within --ready-timeout', async () => {
  const stderr = await notReady(DB_DOWN);
  assert.match(stderr, /clone c1 was not ready within 2s: GET \/up answered 503 "db down"/);
});

test('an app without /up: the failure quotes its 404 page as text', async () => {
  const stderr = await notReady(HEALTHZ_ONLY);
  assert.match(stderr, /clone c1 was not ready within 2s: GET \/up answered 404 "Cannot GET \/up"/);
});

test('an app that never listens: the failure names the connection error', async () => {
  const stderr = await notReady(NEVER_LISTENS);
  assert.match(stderr, /clone c1 was not ready within 2s: GET \/up failed: ECONNREFUSED/);
});

test('a host agent checks clones on the health path it was given, and a restarted agent keeps it', async () => {
  const { dir, home, release } = agentHome(HEALTHZ_ONLY);
  const { client, startAgent, stopAgent } = await agentOn(dir, home);
  let agent = await startAgent();
  try {
    await assert.rejects(
      client.setDesired({ release, epoch: 1, clones: 0, healthPath: 'healthz' }),
      /CLONES_FLEET_HEALTH_PATH|is not a health path/,
    );
    await client.setDesired({ release, epoch: 1, clones: 0, healthPath: '/healthz' });
    const clone = await client.startClone(release, 20_000);
    assert.equal(clone.state, 'serving');
    const hits = JSON.parse((await get(clone.port, '/hits')).body) as Record<string, number>;
    assert.ok((hits['/healthz clones-ready'] ?? 0) >= 1, JSON.stringify(hits));
    assert.equal(hits['/up clones-ready'], undefined, JSON.stringify(hits));
    assert.deepEqual(JSON.parse(readFileSync(join(home, agentFiles.settings), 'utf8')), {
      healthPath: '/healthz',
    });

    // A new agent adopts the clone only if it answers the health path (on /up it gets a 404 and kills it).
    await stopAgent(agent);
    agent = await startAgent();
    const status = await client.status();
    assert.deepEqual(
      status.clones.map((c) => [c.id, c.pid, c.state]),
      [[clone.id, clone.pid, 'serving']],
    );
    await client.stopClone(clone.id);
  } finally {
    await stopAgent(agent);
    // Whatever a failed assertion left running.
    const left = JSON.parse(readFileSync(join(home, agentFiles.clones), 'utf8')) as { pid: number }[];
    for (const c of left) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
  }
});

/** A host agent for `home`, run as on a host (its own process, its clones detached), and its client. */
async function agentOn(dir: string, home: string) {
  const port = await freePort();
  const client = new AgentClient({ host: 'h1', address: '127.0.0.1', port, token: 'test-token' });
  const startAgent = async () => {
    const run = cliAsync(dir, ['agent', '--home', home, '--bind', '127.0.0.1', '--port', String(port)]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answers = await client.status(1000).then(
        () => true,
        () => false,
      );
      if (answers) return { run };
      if (run.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`agent: ${(await run).stderr}`);
      await sleep(100);
    }
  };
  // Wrapped: an async function would wait for the run (the agent's exit) if it returned it.
  const stopAgent = async ({ run }: Awaited<ReturnType<typeof startAgent>>) => {
    run.child.kill('SIGTERM');
    await run;
  };
  return { client, startAgent, stopAgent };
}

/** A host home with the agent's token and a release of `server` built into it. */
function agentHome(server: string): { dir: string; home: string; release: string } {
  const dir = appDir(server);
  const home = join(dir, 'host');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(home, agentFiles.token), 'test-token\n', { mode: 0o600 });
  return { dir, home, release: buildRelease(join(dir, 'shop'), fleetPaths(home)).digest };
}

test("a host agent gives clones the control machine's ready timeout, and a restarted agent keeps it", async () => {
  const { dir, home, release } = agentHome(DB_DOWN);
  const { client, startAgent, stopAgent } = await agentOn(dir, home);
  let agent = await startAgent();
  try {
    await assert.rejects(
      client.setDesired({ release, epoch: 1, clones: 0, readyTimeout: 50 }),
      /CLONES_AGENT_BAD_REQUEST|readyTimeout/,
    );
    await client.setDesired({ release, epoch: 1, clones: 0, readyTimeout: 1500 });
    assert.deepEqual(JSON.parse(readFileSync(join(home, agentFiles.settings), 'utf8')), {
      readyTimeout: 1500,
    });
    await stopAgent(agent);
    agent = await startAgent();
    // The default is 30 s: the clone fails after the 1.5 s it was given, saying what its check got.
    const started = Date.now();
    await assert.rejects(
      client.startClone(release, 20_000),
      /not ready within 1500 ms: GET \/up answered 503/,
    );
    assert.ok(Date.now() - started < 15_000, `failed after ${Date.now() - started} ms`);
  } finally {
    await stopAgent(agent);
  }
});
