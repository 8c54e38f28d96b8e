import { sessionConformance } from '../conformance/session-conformance.ts';
import { startPostgres } from '../harness/postgres-server.ts';

sessionConformance({
  name: 'postgres',
  setup: async () => {
    const pg = await startPostgres({ replicas: 0 });
    return { url: pg.primaryUrl, cleanup: () => pg.stop() };
  },
});
