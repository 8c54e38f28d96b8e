import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { storeKey } from '../../src/session/session-id.ts';
import { RedisStore } from '../../src/session/stores/redis-store.ts';
import type { RuntimeStore } from '../../src/session/stores/runtime-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { runtime } from '../conformance/runtime.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';
import { type RedisCluster, startRedisCluster } from '../harness/redis-cluster.ts';

// One 3-master cluster (no replicas), started once for every suite of this file; each test uses its own
// random keys. The outage suite, last, kills one master and restarts it.
let cluster: RedisCluster;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

storeConformance({
  name: 'redis cluster (3 masters)',
  url: () => cluster.url,
  store: () => new RedisStore({ url: cluster.url, connectTimeout: 2000, prefix: 'test' }),
  byUser: true,
});

describe('redis cluster: sessions by user across slots', () => {
  let store: RuntimeStore;
  let raw: Cluster;
  const prefix = 'byuser';
  const sessionKey = (key: string) => `${prefix}:s:{${key}}`;
  const userSet = (userId: string) => `${prefix}:ut:{${createHash('sha256').update(userId).digest('hex')}}`;
  before(() => {
    store = runtime(new RedisStore({ url: cluster.url, connectTimeout: 2000, prefix }));
    raw = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  });
  after(async () => {
    await store?.close();
    raw?.disconnect();
  });

  it('the user set lives in another slot, and holds the session before the session names its user', async () => {
    const key = newKey();
    const user = `ada-${randomBytes(4).toString('hex')}`;
    await store.create(key, fresh({ n: 1 }));
    assert.equal(await store.bindUser(key, user, Date.now() + 120_000), true);
    const slot = async (k: string) => Number(await raw.cluster('KEYSLOT', k));
    assert.notEqual(await slot(userSet(user)), await slot(sessionKey(key)));
    const [u, p] = await raw.hmget(sessionKey(key), 'u', 'p');
    assert.equal(u, user);
    assert.deepEqual(await raw.smembers(userSet(user)), [`${key}:${p}`]);
    assert.ok((await raw.pttl(userSet(user))) > 60_000, 'the set outlives the session');
  });

  it('a bind stopped between the set and the session is neither listed nor pruned; finished, it is listed', async () => {
    const key = newKey();
    const user = `bob-${randomBytes(4).toString('hex')}`;
    await store.create(key, fresh({ n: 1 }));
    // Steps 1 and 2 of a bind, as a clone that died before step 3 would leave them.
    await raw.hset(sessionKey(key), 'p', 'cafe');
    await raw.sadd(userSet(user), `${key}:cafe`);
    assert.deepEqual(await store.listByUser(user), []);
    assert.equal(await store.destroyByUser(user, undefined, Date.now() + 60_000), 0);
    assert.deepEqual(await raw.smembers(userSet(user)), [`${key}:cafe`], 'kept: the bind may still finish');
    await raw.hset(sessionKey(key), 'u', user); // step 3
    assert.deepEqual(
      (await store.listByUser(user)).map((s) => s.key),
      [key],
    );
  });

  it('rebinding to another user prunes the old entry by exact member; a newer bind of the same user stays', async () => {
    const key = newKey();
    const [a, b] = [`a-${randomBytes(4).toString('hex')}`, `b-${randomBytes(4).toString('hex')}`];
    await store.create(key, fresh({ n: 1 }));
    await store.bindUser(key, a, Date.now() + 120_000);
    const [old] = await raw.smembers(userSet(a));
    await store.bindUser(key, b, Date.now() + 120_000);
    assert.deepEqual(await store.listByUser(a), []);
    assert.deepEqual(await raw.smembers(userSet(a)), [], 'the stale entry is gone');
    assert.deepEqual(
      (await store.listByUser(b)).map((s) => s.key),
      [key],
    );
    // Back to a: a late SREM of the old entry (what a slow listing would send) cannot unlist the new bind.
    await store.bindUser(key, a, Date.now() + 120_000);
    await raw.srem(userSet(a), old as string);
    assert.deepEqual(
      (await store.listByUser(a)).map((s) => s.key),
      [key],
    );
    assert.equal(await store.destroyByUser(a, undefined, Date.now() + 60_000), 1);
    assert.equal(await store.get(key), null);
    assert.deepEqual(await raw.smembers(userSet(a)), []);
    assert.deepEqual(await store.listByUser(b), []);
  });
});

// One master of the cluster dies with kill -9: the sessions on its slots get the outage policy (a coded 503)
// within the timeout, the other two shards keep serving, and once the node is back on its port (same node id
// and slots, data gone: it keeps none) the same app serves its slots again.
outageConformance({
  name: 'redis cluster (one of 3 masters, kill -9)',
  persistsAcrossRestart: false,
  start: async () => {
    const victim = cluster.nodes[0]!;
    return {
      url: cluster.url,
      down: () => victim.kill(),
      up: () => victim.restart(),
      // Asked of the node itself: a key on another node's slots answers MOVED.
      holds: async (id) => {
        const direct = new Redis({ host: '127.0.0.1', port: victim.port, lazyConnect: true });
        try {
          return (await direct.call('EXISTS', `clones:s:{${storeKey(id)}}`).catch(() => 0)) === 1;
        } finally {
          direct.disconnect();
        }
      },
    };
  },
});
