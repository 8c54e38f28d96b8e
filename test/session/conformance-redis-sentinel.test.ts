import { RedisStore } from '../../src/session/stores/redis-store.ts';
import { sessionConformance } from '../conformance/session-conformance.ts';
import { storeContract } from '../conformance/store-contract.ts';
import { type RedisSentinelSet, startRedisSentinel } from '../harness/redis-cluster.ts';
import { shared } from '../harness/shared-server.ts';

// One sentinel set for both suites (each test uses its own random keys), so the file starts it once (8 s).
const set = shared<RedisSentinelSet>(startRedisSentinel, (c) => c.stop(), 2);

storeContract('redis sentinel (master, replica, 3 sentinels)', async () => {
  const c = await set.acquire();
  const store = new RedisStore({ url: c.url, connectTimeout: 2000, prefix: 'test' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await set.release();
    },
  };
});

sessionConformance({
  name: 'redis sentinel (master, replica, 3 sentinels)',
  setup: async () => {
    const c = await set.acquire();
    return { url: c.url, cleanup: () => set.release() };
  },
});
