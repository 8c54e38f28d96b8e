import { outageConformance } from '../conformance/outage-conformance.ts';
import { startRedis } from '../harness/redis-server.ts';

// Redis with AOF (appendfsync always) is SIGKILLed under load and restarted: not one session is lost.
outageConformance({
  name: 'redis (AOF, kill -9)',
  start: async () => {
    const redis = await startRedis({ appendonly: true });
    return { url: redis.url, down: () => redis.kill(), up: () => redis.restart(), stop: () => redis.stop() };
  },
});
