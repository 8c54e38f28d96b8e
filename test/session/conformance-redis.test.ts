import { sessionConformance } from '../conformance/session-conformance.ts';
import { startRedis } from '../harness/redis-server.ts';

sessionConformance({
  name: 'redis',
  setup: async () => {
    const redis = await startRedis();
    return { url: redis.url, cleanup: () => redis.stop() };
  },
});
