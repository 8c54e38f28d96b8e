import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { parse, positionals } from './args.ts';
import { runWithProgress } from './live-progress.ts';
import type { Verb } from './verb.ts';

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
    const client = connectFleet(fleetPaths(values.home));
    await runWithProgress(client, 'rollback', { release }, { json: values.json ?? false });
    return 0;
  },
};
