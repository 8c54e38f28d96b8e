import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type SessionOptions, sessions } from '../../src/session/index.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { freePort } from '../harness/free-port.ts';
import { histogramSeries, parsePrometheus } from '../harness/prometheus-page.ts';

const secret = 'a-test-secret-that-is-at-least-32-characters-long';
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

/** Released by the test: lets one update read its base, then write only after another clone has written. */
let gate: { reached: () => void; release: Promise<void> } | undefined;

async function start(options: SessionOptions) {
  const s = sessions(options);
  const server = createServer(
    s.node(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const k = url.searchParams.get('k') ?? 'n';
      switch (`${req.method} ${url.pathname}`) {
        case 'POST /set':
          req.session[k] = url.searchParams.get('v');
          return res.end('ok');
        case 'GET /get':
          await req.session.load();
          return res.end(JSON.stringify(req.session[k] ?? null));
        case 'POST /incr': {
          const wait = url.searchParams.has('wait') ? gate : undefined;
          const value = await req.session.update(async (d) => {
            if (wait && gate === wait) {
              gate = undefined;
              wait.reached();
              await wait.release;
            }
            d[k] = Number(d[k] ?? 0) + 1;
            return d[k];
          });
          return res.end(JSON.stringify(value));
        }
        case 'POST /destroy':
          await req.session.destroy();
          return res.end('ok');
        default:
          res.statusCode = 404;
          return res.end();
      }
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await s.close();
  });
  return { s, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('clones/session renders store latency, errors by code, CAS retries, created and destroyed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-session-prom-'));
  closers.push(() => rm(dir, { recursive: true, force: true }));
  const store = `sqlite:${join(dir, 'sessions.db')}`;
  const a = await start({ secret, store });
  const b = await start({ secret, store });

  const empty = parsePrometheus(await a.s.prometheus());
  assert.equal(empty.samples.get('clones_session_created_total'), 0);
  assert.equal(empty.types.get('clones_session_store_duration_seconds'), 'histogram');

  // Three browsers log in on clone A, each creating one session.
  const users = [0, 1, 2].map(() => new CookieClient(a.url));
  for (const [i, u] of users.entries())
    assert.equal((await u.request('POST', `/set?k=name&v=u${i}`)).status, 200);
  // User 0 updates its session on A and, meanwhile, on clone B: A's compare-and-set loses once and retries.
  const onB = new CookieClient(b.url);
  for (const [name, value] of users[0]!.jar) onB.jar.set(name, value);
  let reached!: () => void;
  const atGate = new Promise<void>((r) => {
    reached = r;
  });
  let release!: () => void;
  gate = { reached, release: new Promise<void>((r) => (release = r)) };
  const slow = users[0]!.request('POST', '/incr?wait');
  await atGate;
  assert.equal((await onB.request('POST', '/incr')).body, 1);
  release();
  assert.equal((await slow).body, 2, 'the update that lost the race re-ran on the winner and both persist');
  // Two log out.
  for (const u of users.slice(1)) assert.equal((await u.request('POST', '/destroy')).status, 200);

  const page = parsePrometheus(await a.s.prometheus());
  assert.equal(page.samples.get('clones_session_created_total'), 3);
  assert.equal(page.samples.get('clones_session_destroyed_total'), 2);
  assert.equal(page.samples.get('clones_session_cas_retries_total'), 1);
  assert.equal(parsePrometheus(await b.s.prometheus()).samples.get('clones_session_cas_retries_total'), 0);
  // One series per operation A used, and its _count is the number of store calls A made for it.
  const counts = await a.s.engine.metrics();
  let calls = 0;
  for (const op of ['get', 'create', 'patch', 'touch', 'destroy'] as const) {
    if (counts[op] === 0) {
      assert.ok(!page.samples.has(`clones_session_store_duration_seconds_count{op="${op}"}`));
      continue;
    }
    const series = histogramSeries(page, 'clones_session_store_duration_seconds', `op="${op}"`);
    assert.equal(series.count, counts[op], `_count of ${op}`);
    assert.ok(series.sum > 0);
    calls += series.count;
  }
  assert.equal(counts.create, 3);
  assert.equal(counts.destroy, 2);
  assert.ok(counts.patch >= 2, 'the CAS write that lost and the one that won');
  assert.ok(calls >= 7);
  assert.equal(
    [...page.samples.keys()].filter((k) => k.startsWith('clones_session_store_errors_total')).length,
    0,
  );

  // A clone whose Redis is not there: the request that needs its session counts one error, by code.
  const port = await freePort();
  const down = await start({ secret, store: `redis://127.0.0.1:${port}`, storeTimeout: 500 });
  const lost = new CookieClient(down.url);
  for (const [name, value] of users[0]!.jar) lost.jar.set(name, value);
  await lost.request('GET', '/get');
  const failed = parsePrometheus(await down.s.prometheus());
  const errors = [...failed.samples].filter(([k]) => k.startsWith('clones_session_store_errors_total'));
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0]![0], /\{code="CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)"\}$/);
  assert.equal(errors[0]![1], 1);
  assert.equal(histogramSeries(failed, 'clones_session_store_duration_seconds', 'op="get"').count, 1);
});
