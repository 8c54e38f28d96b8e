import { outageConformance } from '../conformance/outage-conformance.ts';
import { fakeAwsCredentials, startDynalite } from '../harness/dynalite-server.ts';

// dynalite, with its data on disk, is killed under load and restarted.
outageConformance({
  name: 'dynamodb (dynalite)',
  start: async () => {
    fakeAwsCredentials();
    const dynalite = await startDynalite({ persist: true });
    return {
      url: dynalite.url('outage'),
      down: () => dynalite.kill(),
      up: () => dynalite.restart(),
      stop: () => dynalite.stop(),
    };
  },
});
