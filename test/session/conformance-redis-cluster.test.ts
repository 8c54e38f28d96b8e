import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { RedisStore } from '../../src/session/stores/redis-store.ts';
import type { RuntimeStore } from '../../src/session/stores/runtime-store.ts';
import { runtime } from '../conformance/runtime.ts';
import { sessionConformance } from '../conformance/session-conformance.ts';
import { storeContract } from '../conformance/store-contract.ts';
import { checkLogOutEverywhere, startByUserApp } from '../harness/by-user-app.ts';
import { type RedisCluster, startRedisCluster } from '../harness/redis-cluster.ts';
import { shared } from '../harness/shared-server.ts';

// One 3-master cluster for both suites (each test uses its own random keys), so the file starts it once.
const cluster = shared<RedisCluster>(startRedisCluster, (c) => c.stop(), 3);

storeContract('redis cluster (3 masters)', async () => {
  const c = await cluster.acquire();
  const store = new RedisStore({ url: c.url, connectTimeout: 2000, prefix: 'test' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await cluster.release();
    },
  };
});

sessionConformance({
  name: 'redis cluster (3 masters)',
  setup: async () => {
    const c = await cluster.acquire();
    return { url: c.url, cleanup: () => cluster.release() };
  },
});

describe('redis cluster: sessions by user across slots', () => {
  let c: RedisCluster;
  let store: RuntimeStore;
  let raw: Cluster;
  const prefix = 'byuser';
  const sessionKey = (key: string) => `${prefix}:s:{${key}}`;
  const userSet = (userId: string) => `${prefix}:ut:{${createHash('sha256').update(userId).digest('hex')}}`;
  const newKey = () => randomBytes(32).toString('hex');
  const fresh = () => ({ data: { n: 1 }, version: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000 });
  before(async () => {
    c = await cluster.acquire();
    store = runtime(new RedisStore({ url: c.url, connectTimeout: 2000, prefix }));
    raw = new Cluster(c.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
  });
  after(async () => {
    await store?.close();
    raw?.disconnect();
    await cluster.release();
  });

  it('the user set lives in another slot, and holds the session before the session names its user', async () => {
    const key = newKey();
    const user = `ada-${randomBytes(4).toString('hex')}`;
    await store.create(key, fresh());
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
    await store.create(key, fresh());
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
    await store.create(key, fresh());
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

  it('log me out everywhere over HTTP', async () => {
    const app = await startByUserApp({ store: c.url });
    try {
      await checkLogOutEverywhere(app);
    } finally {
      await app.close();
    }
  });
});
