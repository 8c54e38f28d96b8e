import { outageConformance } from '../conformance/outage-conformance.ts';
import { startPostgres } from '../harness/postgres-server.ts';

// The PostgreSQL primary is stopped (fast) under load and started again.
outageConformance({
  name: 'postgres',
  start: async () => {
    const pg = await startPostgres({ replicas: 0 });
    return {
      url: pg.primaryUrl,
      down: () => pg.stopPrimary(),
      up: () => pg.startPrimary(),
      stop: () => pg.stop(),
    };
  },
});
