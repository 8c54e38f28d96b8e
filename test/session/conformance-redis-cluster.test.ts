import { RedisStore } from '../../src/session/stores/redis-store.ts';
import { sessionConformance } from '../conformance/session-conformance.ts';
import { storeContract } from '../conformance/store-contract.ts';
import { type RedisCluster, startRedisCluster } from '../harness/redis-cluster.ts';
import { shared } from '../harness/shared-server.ts';

// One 3-master cluster for both suites (each test uses its own random keys), so the file starts it once.
const cluster = shared<RedisCluster>(startRedisCluster, (c) => c.stop(), 2);

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
