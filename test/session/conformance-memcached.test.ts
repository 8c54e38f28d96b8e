import { sessionConformance } from '../conformance/session-conformance.ts';
import { startMemcached } from '../harness/memcached-server.ts';

// Two servers: sessions are spread over both by consistent hashing, as in production.
sessionConformance({
  name: 'memcached',
  setup: async () => {
    const [a, b] = await Promise.all([startMemcached(), startMemcached()]);
    return {
      url: `memcached://${a.address},${b.address}`,
      cleanup: async () => {
        await Promise.all([a.stop(), b.stop()]);
      },
    };
  },
});
