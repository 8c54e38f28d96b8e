import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { int, parse, positionals } from './args.ts';
import type { Verb } from './main.ts';

const HELP = `Usage: clones logs [clone] [options]

The last lines of every clone's log (on every host), or of one clone (an id from "clones status",
host:id across hosts).

Options:
  --lines N             lines per clone (default 100)
  --home DIR            the fleet's directory (default ./.clones)`;

export const logs: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, { lines: { type: 'string' } });
    const [clone] = positionals(args, 1, 'clones logs [clone]');
    const lines = int('--lines', values.lines, 1, 10_000) ?? 100;
    const client = connectFleet(fleetPaths(values.home));
    const q = new URLSearchParams({ lines: String(lines), ...(clone ? { clone } : {}) });
    process.stdout.write(await client.text(`/logs?${q}`));
    return 0;
  },
};
