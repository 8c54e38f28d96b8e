import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ClonesError } from '../../src/errors.ts';
import { sessions } from '../../src/session/index.ts';
import { storeKey } from '../../src/session/session-id.ts';
import { HashRing } from '../../src/session/stores/memcached-ring.ts';
import { MemcachedStore, memcachedServers } from '../../src/session/stores/memcached-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { runtime } from '../conformance/runtime.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';
import { type MemcachedServer, startMemcached } from '../harness/memcached-server.ts';

// Two memcached servers, started once for every suite of this file: sessions are spread over both by
// consistent hashing, as in production, and every test uses its own random keys. The outage suite, last, kills
// and restarts the first one (empty: memcached keeps nothing).
let a: MemcachedServer;
let b: MemcachedServer;
let url = '';
before(async () => {
  [a, b] = await Promise.all([startMemcached(), startMemcached()]);
  url = `memcached://${a.address},${b.address}`;
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

storeConformance({
  name: 'memcached (two servers)',
  url: () => url,
  store: () => new MemcachedStore({ url, connectTimeout: 2000, prefix: 'test' }),
});

/** One raw text-protocol exchange, to look at what the store left on the server. */
function raw(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(command));
    let reply = '';
    socket.on('data', (d) => {
      reply += d.toString('utf8');
      if (/(END|STORED|DELETED|NOT_FOUND|ERROR)\r\n$/.test(reply)) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', reject);
  });
}

describe('MemcachedStore', () => {
  let store: MemcachedStore;
  const portOf = (server: string) => Number(server.split(':')[1]);
  before(() => {
    store = new MemcachedStore({ url, connectTimeout: 1000, prefix: 'test' });
  });
  after(async () => {
    await store.close();
  });

  it('keeps no per-user index: the engine answers CLONES_SESSION_BY_USER_UNSUPPORTED (501)', async () => {
    const s = sessions({
      secret: 'a-test-secret-that-is-at-least-32-bytes',
      store: `memcached://${a.address}`,
    });
    await assert.rejects(s.engine.listByUser('ada'), {
      code: 'CLONES_SESSION_BY_USER_UNSUPPORTED',
      status: 501,
    });
    await assert.rejects(s.engine.destroyByUser('ada'), { code: 'CLONES_SESSION_BY_USER_UNSUPPORTED' });
    await s.close();
  });

  it('spreads sessions over both servers by consistent hashing, each session on exactly one', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const key = newKey();
      await store.create(key, fresh({ i }));
      const owner = store.serverFor(key);
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
      const other = owner === a.address ? b : a;
      assert.match(await raw(portOf(owner), `get test:s:${key}\r\n`), /^VALUE /);
      assert.equal(await raw(other.port, `get test:s:${key}\r\n`), 'END\r\n');
    }
    assert.equal(counts.size, 2);
    for (const n of counts.values()) assert.ok(n > 50, `unbalanced: ${[...counts.values()]}`);
  });

  it('the same server list in another order maps every key to the same server', async () => {
    const other = new MemcachedStore({
      url: `memcached://${b.address},${a.address}`,
      connectTimeout: 1000,
      prefix: 'test',
    });
    for (let i = 0; i < 100; i++) {
      const key = newKey();
      assert.equal(other.serverFor(key), store.serverFor(key));
    }
    await other.close();
  });

  it('touch is a native TOUCH: the session item is not rewritten (same CAS, same bytes)', async () => {
    const key = newKey();
    const session = fresh({ user: 'ada' });
    await store.create(key, session);
    const port = portOf(store.serverFor(key));
    const before = await raw(port, `gets test:s:${key}\r\n`);
    assert.equal(await store.touch(key, session.expiresAt + 120_000), true);
    assert.equal(await raw(port, `gets test:s:${key}\r\n`), before);
    assert.equal((await store.get(key))?.expiresAt, session.expiresAt + 120_000);
    // A patch after the touch keeps the touched expiry and makes the touch record moot.
    await store.patch(key, { set: { n: 1 }, del: [] });
    assert.equal((await store.get(key))?.expiresAt, session.expiresAt + 120_000);
  });

  it('destroy replaces the session item with a tombstone on the same server', async () => {
    const key = newKey();
    await store.create(key, fresh({ user: 'ada' }));
    await store.destroy(key, Date.now() + 60_000);
    const reply = await raw(portOf(store.serverFor(key)), `get test:s:${key}\r\n`);
    assert.match(reply, /\{"t":\d+\}/);
  });

  it('a server that is down fails its calls fast with a coded error; the other keeps serving', async () => {
    const down = await startMemcached();
    const mixed = runtime(
      new MemcachedStore({
        url: `memcached://${down.address},${a.address}`,
        connectTimeout: 500,
        prefix: 't',
      }),
      1000,
    );
    const keys = Array.from({ length: 20 }, newKey);
    for (const key of keys) await mixed.create(key, fresh({ key }));
    await down.kill();
    const inner = new MemcachedStore({
      url: `memcached://${down.address},${a.address}`,
      connectTimeout: 500,
      prefix: 't',
    });
    let failed = 0;
    for (const key of keys) {
      const started = Date.now();
      try {
        assert.deepEqual((await mixed.get(key))?.data, { key });
        assert.equal(inner.serverFor(key), a.address);
      } catch (err) {
        failed++;
        assert.ok(err instanceof ClonesError);
        assert.equal(err.code, 'CLONES_SESSION_STORE_UNAVAILABLE');
        assert.equal(inner.serverFor(key), down.address);
      }
      assert.ok(Date.now() - started < 1500);
    }
    assert.ok(failed > 0 && failed < keys.length);
    await down.restart();
    // Back, empty (memcached keeps nothing): its sessions are gone, and the store serves it again unprompted.
    for (const key of keys) {
      if (inner.serverFor(key) === down.address) assert.equal(await mixed.get(key), null);
    }
    await inner.close();
    await mixed.close();
    await down.stop();
  });

  it('URLs: several servers, default port, pool size, and clear errors', () => {
    assert.deepEqual(memcachedServers('memcached://h1:11211,h2'), {
      servers: ['h1:11211', 'h2:11211'],
      poolSize: 4,
    });
    assert.deepEqual(memcachedServers('memcached://[::1]:5000?pool=2').servers, ['[::1]:5000']);
    for (const bad of [
      'memcached://',
      'memcached://h1:99999',
      'memcached://h1,h1:11211',
      'memcached://h1?pool=0',
      'memcached://h1?timeout=3',
      'memcache://h1',
    ]) {
      assert.throws(() => memcachedServers(bad), { code: 'CLONES_SESSION_STORE_URL' }, bad);
    }
  });
});

// One of the two servers dies under load and comes back: the policy applies to the sessions it held (503 JSON,
// or anonymous), the sessions on the other server are served throughout, nothing crashes or hangs past the
// timeout, and the same clone recovers by itself. Memcached keeps nothing across a restart: the sessions the
// dead server held are gone (documented), never served wrong.
outageConformance({
  name: 'memcached (one of two servers)',
  persistsAcrossRestart: false,
  storeTimeout: 500,
  start: async () => {
    const ring = new HashRing([a.address, b.address]);
    return {
      url,
      down: () => a.kill(),
      up: () => a.restart(),
      holds: async (id) => ring.pick(storeKey(id)) === a.address,
    };
  },
});
