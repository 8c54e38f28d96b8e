import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { parse, positionals } from './args.ts';
import { createProgress } from './live-progress.ts';
import type { Verb } from './main.ts';

const HELP = `Usage: clones rollback [release] [options]

Rolls the running fleet back to the previous successfully deployed release (or to the given release
id or prefix), one clone at a time. Exits 1 with the reason when it fails.

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events (default: a live table on a terminal, else lines)`;

export const rollback: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    const [release] = positionals(args, 1, 'clones rollback [release]');
    const json = values.json ?? false;
    const client = connectFleet(fleetPaths(values.home));
    const progress = createProgress({ json, action: 'rollback', poll: () => client.get('/status') });
    try {
      await client.stream('/rollback', { release }, (e) => progress.event(e));
    } finally {
      await progress.close();
    }
    return 0;
  },
};
