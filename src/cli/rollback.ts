import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { parse, positionals, printEvent } from './args.ts';
import type { Verb } from './main.ts';

const HELP = `Usage: clones rollback [release] [options]

Rolls the running fleet back to the previous successfully deployed release (or to the given release
id or prefix), one clone at a time. Exits 1 with the reason when it fails.

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events`;

export const rollback: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    const [release] = positionals(args, 1, 'clones rollback [release]');
    const json = values.json ?? false;
    await connectFleet(fleetPaths(values.home)).stream('/rollback', { release }, (e) => printEvent(e, json));
    return 0;
  },
};
