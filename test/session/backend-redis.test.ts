import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ClonesError } from '../../src/errors.ts';
import { freePort } from '../../src/free-port.ts';
import { sessions } from '../../src/session/index.ts';
import { RedisStore } from '../../src/session/stores/redis-store.ts';
import { redisConnection } from '../../src/session/stores/redis-topology.ts';
import type { SessionStore } from '../../src/session/stores/store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { runtime } from '../conformance/runtime.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type RedisServer, startRedis } from '../harness/redis-server.ts';
import { startSessionApp } from '../harness/session-app.ts';

// Every suite of this file on two servers started once: a plain one (no persistence), which the outage and
// recovery tests at the end kill and bring back empty, and one with AOF (appendfsync always) for what must
// survive a crash (the outage suite and the persistence test). Every test uses its own random keys. A password
// and TLS are settings of the server, so those two tests start their own.
let redis: RedisServer;
let durable: RedisServer;
before(async () => {
  [redis, durable] = await Promise.all([startRedis(), startRedis({ appendonly: true })]);
});
after(async () => {
  await Promise.all([redis?.stop(), durable?.stop()]);
});

storeConformance({
  name: 'redis',
  url: () => redis.url,
  store: () => new RedisStore({ url: redis.url, connectTimeout: 2000, prefix: 'test' }),
  byUser: true,
});

const CONNECT_TIMEOUT = 1000;
/** Room for the scheduler on a loaded 2-core machine, on top of connectTimeout. */
const MARGIN = 1500;

const open = (url: string, prefix = 'test') =>
  runtime(new RedisStore({ url, connectTimeout: CONNECT_TIMEOUT, prefix }));

/** Resolves with how long `call` took to reject; fails the test if it resolves. */
async function rejectsWithin(call: () => Promise<unknown>): Promise<{ ms: number; err: unknown }> {
  const started = Date.now();
  try {
    await call();
  } catch (err) {
    return { ms: Date.now() - started, err };
  }
  assert.fail('the call succeeded while redis was down');
}

/** Retries `call` until it succeeds: the store must recover on its own, with no new instance. */
async function eventually<T>(call: () => Promise<T>, withinMs = 8000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

describe('RedisStore data layout', () => {
  let raw: Redis;
  before(() => {
    raw = new Redis(redis.url, { lazyConnect: true });
  });
  after(() => {
    raw.disconnect();
  });

  it('a session is a hash with v, c, e, j and one d: field per key, expiring at expiresAt', async () => {
    const store = open(`${redis.url}/2`, 'app');
    try {
      const key = newKey();
      const session = fresh({ user: { id: 7 }, theme: 'dark' });
      await store.create(key, session);
      await store.patch(key, { set: { theme: 'light' }, del: [] });
      await raw.select(2);
      const hash = await raw.hgetall(`app:s:{${key}}`);
      assert.deepEqual(hash, {
        v: '2',
        c: String(session.createdAt),
        e: String(session.expiresAt),
        'd:user': '{"id":7}',
        'd:theme': '"light"',
        j: JSON.stringify({ user: { id: 7 }, theme: 'light' }),
      });
      assert.equal(await raw.pexpiretime(`app:s:{${key}}`), session.expiresAt);
      await raw.select(0);
      assert.equal(await raw.exists(`app:s:{${key}}`), 0, 'db 2 from the URL, not db 0');
    } finally {
      await store.close();
    }
  });

  it('destroy deletes the hash and leaves a tombstone key expiring at tombstoneUntil', async () => {
    const store = open(redis.url, 'app');
    try {
      const key = newKey();
      await store.create(key, fresh({ a: 1 }));
      const until = Date.now() + 60_000;
      await store.destroy(key, until);
      await raw.select(0);
      assert.equal(await raw.exists(`app:s:{${key}}`), 0);
      assert.equal(await raw.pexpiretime(`app:t:{${key}}`), until);
    } finally {
      await store.close();
    }
  });

  it('a key named __proto__ stays data and never becomes the prototype', async () => {
    const store = open(redis.url, 'app');
    try {
      const key = newKey();
      await store.create(key, fresh({}));
      await store.patch(key, { set: JSON.parse('{"__proto__":{"isAdmin":true}}'), del: [] });
      const got = await store.get(key);
      assert.ok(got);
      assert.equal((got.data as { isAdmin?: boolean }).isAdmin, undefined);
      assert.deepEqual(Object.keys(got.data), ['__proto__']);
    } finally {
      await store.close();
    }
  });

  it('close is idempotent and later calls reject', async () => {
    const store = open(redis.url);
    await store.get(newKey());
    await store.close();
    await store.close();
    await assert.rejects(store.get(newKey()), { code: 'CLONES_SESSION_STORE_UNAVAILABLE' });
  });
});

describe('sessions().ready()', () => {
  it('connects before the first request, and rejects with a code when the server is down', async () => {
    const s = sessions({ store: redis.url, secret: 'x'.repeat(32), storeTimeout: CONNECT_TIMEOUT });
    const admin = new Redis(redis.url);
    const clients = async () =>
      String(await admin.client('LIST'))
        .trim()
        .split('\n').length;
    try {
      const idle = await clients();
      await s.ready();
      assert.equal(await clients(), idle + 1, 'ready() opened the connection the first request will use');
    } finally {
      await Promise.all([s.close(), admin.quit()]);
    }
    const down = sessions({
      store: `redis://127.0.0.1:${await freePort()}`,
      secret: 'x'.repeat(32),
      storeTimeout: CONNECT_TIMEOUT,
    });
    const { ms, err } = await rejectsWithin(() => down.ready());
    await down.close();
    assert.equal((err as ClonesError).code, 'CLONES_SESSION_STORE_UNAVAILABLE');
    assert.ok(ms < CONNECT_TIMEOUT + MARGIN, `rejected after ${ms} ms`);
  });
});

describe('RedisStore connection options', () => {
  it('authenticates with the password in the URL, and fails fast with a wrong one', async () => {
    const secured = await startRedis({ password: 's3cret/with:chars@' });
    const good = open(secured.url);
    const bad = open(secured.url.replace(/:[^@/]*@/, ':wrong@'));
    try {
      const key = newKey();
      assert.deepEqual(await good.create(key, fresh({ ok: 1 })), { ok: true, version: 1 });
      const { ms, err } = await rejectsWithin(() => bad.get(key));
      assert.ok(ms < CONNECT_TIMEOUT + MARGIN, `rejected after ${ms} ms`);
      assert.match(String((err as Error).message), /WRONGPASS|invalid|password|not connected/i);
    } finally {
      await good.close();
      await bad.close();
      await secured.stop();
    }
  });

  // rediss:// with a private CA, a password and a database number: sessions work end to end; a URL that does
  // not trust the server's certificate gets the coded 503, not a crash.
  it('rediss:// with password, db and a private CA', async () => {
    const tls = await startRedis({ tls: true, password: 'p@ss word' });
    const url = new URL(tls.url);
    url.pathname = '/3';
    const good = await startSessionApp({ store: url.toString() });
    const untrusted = new URL(url);
    untrusted.searchParams.delete('ca');
    const bad = await startSessionApp({ store: untrusted.toString(), storeTimeout: 1000 });
    try {
      assert.match(tls.url, /^rediss:\/\//);
      const c = new CookieClient(good.url);
      await c.post('/set?k=user&v=%22ada%22');
      assert.deepEqual((await c.get('/get')).body.data, { user: 'ada' });
      const refused = await new CookieClient(bad.url).post('/set?k=a&v=1');
      assert.equal(refused.status, 503);
      assert.match(refused.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
    } finally {
      await good.close();
      await bad.close();
      await tls.stop();
    }
  });

  it('reads host, port, credentials, db and TLS from the URL', () => {
    assert.deepEqual(redisConnection('redis://127.0.0.1:6380'), { host: '127.0.0.1', port: 6380, db: 0 });
    assert.deepEqual(redisConnection('redis://cache.internal'), {
      host: 'cache.internal',
      port: 6379,
      db: 0,
    });
    assert.deepEqual(redisConnection('redis://:p%40ss@h:1/3'), {
      host: 'h',
      port: 1,
      db: 3,
      password: 'p@ss',
    });
    assert.deepEqual(redisConnection('redis://app:pw@[::1]:7000/0'), {
      host: '::1',
      port: 7000,
      db: 0,
      username: 'app',
      password: 'pw',
    });
    assert.deepEqual(redisConnection('rediss://h:6380'), { host: 'h', port: 6380, db: 0, tls: {} });
    assert.deepEqual(redisConnection('rediss://h?tls_insecure=1'), {
      host: 'h',
      port: 6379,
      db: 0,
      tls: { rejectUnauthorized: false },
    });
    for (const url of [
      'redis://h/abc',
      'redis://h/-1',
      'redis://h?family=6',
      'redis://h?tls_insecure=1',
      'nope',
    ]) {
      assert.throws(() => redisConnection(url), { code: 'CLONES_SESSION_STORE_URL' }, url);
    }
  });

  it('keeps the password out of URL error messages', () => {
    assert.throws(
      () => redisConnection('redis://:hunter2@h/notadb'),
      (err: Error) => !err.message.includes('hunter2'),
    );
  });
});

// These kill the plain server: they come after every suite that uses it.
describe('RedisStore outage and recovery', () => {
  it('rejects within connectTimeout while redis is down, and recovers by itself when it is back', async () => {
    const store = open(redis.url);
    const guarded: SessionStore = runtime(open(redis.url), CONNECT_TIMEOUT);
    try {
      const key = newKey();
      await store.create(key, fresh({ before: true }));
      await guarded.get(key);

      await redis.kill();
      const first = await rejectsWithin(() => store.get(key));
      assert.ok(first.ms < CONNECT_TIMEOUT + MARGIN, `first call rejected after ${first.ms} ms`);
      // Every kind of call, many at once, in the middle of the outage: all reject, none hangs.
      await sleep(300);
      const calls = [
        () => store.get(key),
        () => store.create(newKey(), fresh({})),
        () => store.patch(key, { set: { x: 1 }, del: [] }),
        () => store.touch(key, Date.now() + 60_000),
        () => store.destroy(key, Date.now() + 60_000),
      ];
      const outcomes = await Promise.all([...calls, ...calls, ...calls].map((call) => rejectsWithin(call)));
      for (const { ms } of outcomes)
        assert.ok(ms < CONNECT_TIMEOUT + MARGIN, `a call rejected after ${ms} ms`);
      const wrapped = await rejectsWithin(() => guarded.get(key));
      assert.ok(wrapped.err instanceof ClonesError);
      assert.match(wrapped.err.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
      assert.equal(wrapped.err.status, 503);

      await redis.restart();
      // Redis came back empty (no persistence): the old session is gone, the same instances work again,
      // including the Lua scripts the new server has never seen.
      assert.equal(await eventually(() => store.get(key)), null);
      const key2 = newKey();
      assert.deepEqual(await store.create(key2, fresh({ after: true })), { ok: true, version: 1 });
      assert.deepEqual(await store.patch(key2, { set: { n: 1 }, del: [] }), { ok: true, version: 2 });
      assert.equal(await store.touch(key2, Date.now() + 120_000), true);
      assert.deepEqual((await eventually(() => guarded.get(key2)))?.data, { after: true, n: 1 });
    } finally {
      await store.close();
      await guarded.close();
    }
  });

  it('calls in flight when redis dies all settle promptly', async () => {
    const store = open(redis.url);
    try {
      const key = newKey();
      await store.create(key, fresh({ n: 0 }));
      const started = Date.now();
      const inFlight = Array.from({ length: 200 }, (_, i) =>
        i % 2 ? store.get(key) : store.patch(key, { set: { [`k${i}`]: i }, del: [] }),
      );
      const killed = redis.kill();
      const settled = await Promise.allSettled(inFlight);
      const ms = Date.now() - started;
      await killed;
      assert.equal(settled.length, 200);
      assert.ok(ms < CONNECT_TIMEOUT + MARGIN, `settled after ${ms} ms`);
      await redis.restart();
      assert.equal(await eventually(() => store.get(key)), null, 'redis restarted empty');
    } finally {
      await store.close();
    }
  });

  it('a call made while redis restarts waits for it instead of failing', async () => {
    const store = open(redis.url);
    try {
      const key = newKey();
      await store.create(key, fresh({ a: 1 }));
      await redis.kill();
      await sleep(50);
      // Restart in the background; the call below starts during the outage and must succeed once the
      // server is ready, as long as that happens within connectTimeout.
      const restarting = redis.restart();
      const started = Date.now();
      const result = await store.create(key, fresh({ a: 2 }));
      await restarting;
      assert.deepEqual(result, { ok: true, version: 1 });
      assert.ok(Date.now() - started < CONNECT_TIMEOUT + MARGIN);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore with persistence', () => {
  it('sessions survive a crash of a redis with appendfsync always, read by the same store instance', async () => {
    const store = open(durable.url);
    try {
      const key = newKey();
      const session = fresh({ cart: ['book'] });
      await store.create(key, session);
      await store.patch(key, { set: { paid: true }, del: [] });
      await store.destroy(newKey(), Date.now() + 60_000);
      await durable.kill();
      await durable.restart();
      const got = await eventually(() => store.get(key));
      assert.deepEqual(got, { ...session, data: { cart: ['book'], paid: true }, version: 2 });
    } finally {
      await store.close();
    }
  });
});

// Redis with AOF (appendfsync always) is SIGKILLed under load and restarted: not one session is lost.
outageConformance({
  name: 'redis (AOF, kill -9)',
  start: async () => ({
    url: durable.url,
    down: () => durable.kill(),
    up: () => durable.restart(),
  }),
});
