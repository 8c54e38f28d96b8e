import pino from 'pino';
import { PostgresDriver } from '../../src/data/postgres-driver.ts';
import { driverConformance } from '../conformance/driver-conformance.ts';
import { startPostgres } from '../harness/postgres-server.ts';

// A lone primary is enough for the driver: replicas, lag and failover have their own files (replicas.test.ts,
// ryw-clones.test.ts).
driverConformance({
  name: 'postgres',
  positions: true,
  setup: async () => {
    const pg = await startPostgres({ replicas: 0 });
    const logger = pino({ level: 'silent' });
    return {
      url: pg.primaryUrl,
      open: () =>
        new PostgresDriver({ url: pg.primaryUrl, role: 'primary', timeout: 2000, poolSize: 10, logger }),
      cleanup: () => pg.stop(),
    };
  },
});
