import { sessionConformance } from '../conformance/session-conformance.ts';
import { fakeAwsCredentials, startDynalite } from '../harness/dynalite-server.ts';

let n = 0;
sessionConformance({
  name: 'dynamodb (dynalite)',
  setup: async () => {
    fakeAwsCredentials();
    const dynalite = await startDynalite();
    // The table does not exist yet: the store creates it on first use.
    return { url: dynalite.url(`sessions-${++n}`), cleanup: () => dynalite.stop() };
  },
});
