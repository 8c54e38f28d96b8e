import { usageError } from '../errors.ts';
import { connectFleet, fleetPaths } from '../fleet/index.ts';
import { parse, positionals } from './args.ts';
import { runWithProgress } from './live-progress.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones drain CLONE [options]

Replaces one clone (an id from "clones status": c2, or h1:c2 across hosts): a new clone of the
release it runs starts and passes its health gate first, then CLONE leaves the balancer, finishes
its in-flight requests and stops. For a clone that leaks memory or misbehaves.

Options:
  --home DIR            the fleet's directory (default ./.clones)
  --json                progress as NDJSON events (default: a live table on a terminal, else lines)`;

export const drain: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {});
    const [clone] = positionals(args, 1, 'clones drain CLONE');
    if (clone === undefined) throw usageError('clones drain needs a clone id, e.g. clones drain c2');
    const client = connectFleet(fleetPaths(values.home));
    await runWithProgress(
      client,
      'drain',
      {},
      { json: values.json ?? false, path: `/clones/${encodeURIComponent(clone)}/drain` },
    );
    return 0;
  },
};
