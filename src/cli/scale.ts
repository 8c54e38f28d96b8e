import { usageError } from '../errors.ts';
import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { int, parse, positionals } from './args.ts';
import { runWithProgress } from './live-progress.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones scale N [options]

Runs N clones (0-256) of the current release; new clones boot from the desired release. Across
hosts, N clones on every host, or with --host on that host only.

Options:
  --host NAME           across hosts: scale this host only (the others keep their count)
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events (default: a live table on a terminal, else lines)`;

export const scale: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, { host: { type: 'string' } });
    const [n] = positionals(args, 1, 'clones scale N');
    if (n === undefined) throw usageError('clones scale needs the number of clones, e.g. clones scale 5');
    const clones = int('N', n, 0, 256)!;
    const client = connectFleet(fleetPaths(values.home));
    const body = values.host === undefined ? { clones } : { clones, host: values.host };
    await runWithProgress(client, 'scale', body, { json: values.json ?? false });
    return 0;
  },
};
