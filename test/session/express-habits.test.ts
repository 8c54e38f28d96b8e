import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sessions } from '../../src/session/index.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type PostgresCluster, startPostgres } from '../harness/postgres-server.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';

// One test per express-session habit the issue found failing quietly; each fails on the code before the fix.
const SECRET = 'a session secret of at least 32 bytes!';
const closers: (() => Promise<unknown> | unknown)[] = [];
let redis: RedisServer;
let postgres: PostgresCluster;

before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
});
after(async () => {
  for (const close of closers.reverse()) await close();
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

// biome-ignore lint/suspicious/noExplicitAny: each test passes express-session's options as an app would
async function app(options: any, routes: (app: express.Express) => void): Promise<CookieClient> {
  const s = sessions({ secret: SECRET, store: 'memory:habits', ...options });
  const a = express();
  a.use(s.express());
  routes(a);
  const server = a.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  closers.push(
    () => new Promise((r) => server.close(r)),
    () => s.close(),
  );
  return new CookieClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
}

const attrs = (setCookie: string | undefined) => setCookie?.split('; ').slice(1) ?? [];
const refused = (options: object) => {
  try {
    sessions({ secret: SECRET, store: 'memory:habits', ...options });
  } catch (err) {
    return err as { code: string; message: string };
  }
  return undefined;
};

test('cookie.maxAge sets the Max-Age and the idle timeout, and req.session.cookie shows it', async () => {
  const c = await app({ cookie: { maxAge: 60_000 } }, (a) => {
    a.post('/', (req, res) => {
      req.session.n = 1;
      res.json({ maxAge: req.session.cookie.maxAge, original: req.session.cookie.originalMaxAge });
    });
  });
  const r = await c.post('/');
  assert.ok(attrs(r.setCookies[0]).includes('Max-Age=60'), r.setCookies[0]);
  assert.equal(r.body.original, 60_000);
  assert.ok(r.body.maxAge > 59_000 && r.body.maxAge <= 60_000);
});

test('req.session.cookie.maxAge assigned in a request ("remember me") is that session\'s lifetime', async () => {
  const c = await app({}, (a) => {
    a.post('/remember', (req, res) => {
      req.session.cookie.maxAge = 3 * 86_400_000; // within the absolute timeout (7 days)
      res.sendStatus(204);
    });
    a.get('/', async (req, res) => {
      await req.session.load();
      res.json({ original: req.session.cookie.originalMaxAge, keys: Object.keys(req.session) });
    });
  });
  const r = await c.post('/remember');
  assert.ok(attrs(r.setCookies[0]).includes(`Max-Age=${3 * 86_400}`), r.setCookies[0]);
  const after = await c.get('/');
  assert.deepEqual(after.body, { original: 3 * 86_400_000, keys: [] });
});

test('cookie.httpOnly: false leaves HttpOnly out; sameSite takes every express-session spelling', async () => {
  for (const [sameSite, expected] of [
    ['lax', 'SameSite=Lax'],
    ['Lax', 'SameSite=Lax'],
    ['strict', 'SameSite=Strict'],
    [true, 'SameSite=Strict'],
    [false, undefined],
  ] as const) {
    const c = await app({ cookie: { httpOnly: false, sameSite, priority: 'high' } }, (a) => {
      a.post('/', (req, res) => {
        req.session.n = 1;
        res.sendStatus(204);
      });
    });
    const got = attrs((await c.post('/')).setCookies[0]);
    assert.ok(!got.includes('HttpOnly'), `${String(sameSite)}: ${got}`);
    assert.ok(got.includes('Priority=High'));
    assert.equal(
      got.find((a) => a.startsWith('SameSite')),
      expected,
      `sameSite ${String(sameSite)}`,
    );
  }
});

test('saveUninitialized: true gives an untouched visitor a session; rolling re-sends the cookie each time', async () => {
  const c = await app({ saveUninitialized: true, rolling: true }, (a) => {
    a.get('/', (_req, res) => {
      res.send('hi');
    });
  });
  const first = await c.get('/');
  assert.equal(first.setCookies.length, 1);
  const second = await c.get('/');
  assert.equal(second.setCookies.length, 1, 'rolling: the cookie again');
  assert.equal(second.setCookies[0]!.split(';')[0], first.setCookies[0]!.split(';')[0], 'same session');
});

test('genid(req) makes the ids; req.sessionID and req.session.id are set, as in express-session', async () => {
  let n = 0;
  const c = await app({ genid: () => `user-42-${String(++n).padStart(20, '0')}` }, (a) => {
    a.post('/', (req, res) => {
      req.session.x = 1;
      res.json({ sessionID: req.sessionID, id: req.session.id });
    });
    a.get('/', async (req, res) => {
      await req.session.load();
      res.json({ sessionID: req.sessionID, x: req.session.x });
    });
  });
  const r = await c.post('/');
  assert.equal(r.body.sessionID, 'user-42-00000000000000000001');
  assert.equal(r.body.id, r.body.sessionID);
  assert.deepEqual((await c.get('/')).body, { sessionID: 'user-42-00000000000000000001', x: 1 });
});

test('resave: true, cookie.expires and unknown options are refused with a coded error saying what to use', () => {
  assert.equal(refused({ resave: true })?.code, 'CLONES_INVALID_OPTION');
  assert.match(refused({ resave: true })!.message, /rolling: true/);
  assert.match(refused({ cookie: { expires: new Date() } })!.message, /cookie\.maxAge/);
  assert.match(refused({ cookie: { signed: true } })!.message, /^cookie\.signed: unknown/);
  assert.match(refused({ maxAge: 5 })!.message, /^maxAge: unknown option/);
  assert.equal(refused({ resave: false, saveUninitialized: false, unset: 'keep', proxy: true }), undefined);
});

test('regenerate(cb), save(cb), reload(cb), destroy(cb) call their callbacks (no hanging request)', async () => {
  const c = await app({ eager: true }, (a) => {
    a.post('/', (req, res, next) => {
      req.session.regenerate((err) => {
        if (err) return next(err);
        req.session.user = 'alice';
        req.session.save((err) => {
          if (err) return next(err);
          req.session.user = 'changed';
          req.session.reload((err) => {
            if (err) return next(err);
            const user = req.session.user;
            req.session.destroy((err) => (err ? next(err) : res.json({ user })));
          });
        });
      });
    });
  });
  const r = await Promise.race([
    c.post('/'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('the request hung')), 5000)),
  ]);
  assert.deepEqual((r as { body: unknown }).body, { user: 'alice' });
});

test("unset: 'destroy' ends the session when the app sets req.session = null", async () => {
  const c = await app({ unset: 'destroy' }, (a) => {
    a.post('/in', (req, res) => {
      req.session.user = 'bob';
      res.sendStatus(204);
    });
    a.post('/out', (req, res) => {
      (req as { session: unknown }).session = null;
      res.sendStatus(204);
    });
    a.get('/', async (req, res) => {
      await req.session.load();
      res.json({ user: req.session.user ?? null });
    });
  });
  await c.post('/in');
  const cookie = c.cookieHeader();
  await c.post('/out');
  assert.deepEqual((await new CookieClient(c.base).get('/', { cookie })).body, { user: null });
});

test('store: an express-session Store (its MemoryStore), an ioredis client and a pg Pool', async () => {
  const { MemoryStore } = createRequire(import.meta.url)('express-session');
  const client = new Redis(redis.url);
  const pool = new pg.Pool({ connectionString: postgres.primaryUrl });
  closers.push(
    () => client.quit(),
    () => pool.end(),
  );
  for (const store of [new MemoryStore(), client, pool]) {
    const c = await app({ store }, (a) => {
      a.post('/', async (req, res) => {
        res.json({ n: await req.session.update((d) => (d.n = (Number(d.n) || 0) + 1)) });
      });
    });
    await c.post('/'); // the session and its cookie, then concurrent requests on it
    await Promise.all(Array.from({ length: 10 }, () => c.post('/')));
    assert.deepEqual((await c.post('/')).body, { n: 12 }, 'no lost update');
  }
  assert.equal(client.status, 'ready', "the app's client stays open");
});
