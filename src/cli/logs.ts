import { ClonesError, usageError } from '../errors.ts';
import { connectFleet, type FleetStatus, fleetPaths } from '../fleet/index.ts';
import { duration, int, parse, positionals } from './args.ts';
import { localLogs } from './logs-local.ts';
import type { Verb } from './main.ts';

const HELP = `Usage: clones logs [clone|release] [options]

The clones' stdout and stderr: every clone's log, one clone's (an id from "clones status", host:id across
hosts), or the clones of one release (its id or a prefix of 4+ characters). Lines start with the clone id.
Logs are rotated by size (10 MiB, 3 kept: c1.log.1 ... c1.log.3); the rotated files are read too.

Options:
  --lines N             lines per clone (default 100)
  -f, --follow          keep printing new lines (Ctrl-C to stop); follows clones that start later
  --since DURATION      only lines from the last DURATION (30s, 10m, 2h, 1d), by the time a line carries
                        (pino's "time", or an ISO-8601 stamp at its start; a line without one goes with
                        the line before it)
  --home DIR            the fleet's directory (default ./.clones)`;

export const logs: Verb = {
  help: HELP,
  async run(argv) {
    const { values, positionals: args } = parse(argv, {
      lines: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      since: { type: 'string' },
    });
    const [target] = positionals(args, 1, 'clones logs [clone|release]');
    const lines = int('--lines', values.lines, 1, 10_000) ?? 100;
    const sinceMs = duration('--since', values.since);
    const paths = fleetPaths(values.home);
    const client = runningFleet(paths);
    const status = client ? ((await client.get('/status')) as FleetStatus) : undefined;
    if (client && status?.hosts) {
      // Across hosts the logs stay on each host; the fleet API answers their last lines.
      if (values.follow || sinceMs !== undefined)
        throw usageError(
          '--follow and --since read the logs on the machine the clones run on; across hosts use --lines',
        );
      const q = new URLSearchParams({ lines: String(lines), ...(target ? { clone: target } : {}) });
      process.stdout.write(await client.text(`/logs?${q}`));
      return 0;
    }
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    await localLogs({
      dir: paths.logs,
      target,
      clones: status?.clones.map((c) => ({ id: c.id, release: c.release })),
      lines,
      since: sinceMs === undefined ? undefined : Date.now() - sinceMs,
      follow: values.follow === true,
      signal: stop.signal,
      write: (text) => process.stdout.write(text),
    });
    return 0;
  },
};

/** The running `clones up`, or undefined when there is none (its clones' logs are still on disk). */
function runningFleet(paths: ReturnType<typeof fleetPaths>) {
  try {
    return connectFleet(paths);
  } catch (err) {
    if (err instanceof ClonesError && err.code === 'CLONES_FLEET_NOT_RUNNING') return undefined;
    throw err;
  }
}
