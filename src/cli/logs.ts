import { ClonesError, usageError } from '../errors.ts';
import { connectFleet, type FleetStatus, fleetPaths } from '../fleet/index.ts';
import { duration, int, parse, positionals } from './args.ts';
import { localLogs } from './logs-local.ts';
import type { Verb } from './verb.ts';

const HELP = `Usage: clones logs [clone|release] [options]

The clones' stdout and stderr: every clone's log, one clone's (an id from "clones status", host:id across
hosts), or the clones of one release (its id or a prefix of 4+ characters). Lines start with the clone id
(host:id across hosts, where -f and --since read every host's logs through its agent).
"clones logs balancer": the balancer's access log (with clones up --access-log), in Combined Log Format.
Logs are rotated by size (10 MiB, 3 kept: c1.log.1 ... c1.log.3); the rotated files are read too.

Options:
  --lines N             lines per clone (default 100; with -f, 0 prints only new lines)
  -f, --follow          keep printing new lines (Ctrl-C to stop); follows clones that start later
  --since DURATION      only lines from the last DURATION (30s, 10m, 2h, 1d), by the time a line carries
                        (pino's "time", an ISO-8601 stamp at its start, or an access log's [time]; a
                        line without one goes with the line before it)
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
    // 0 with -f: only the lines written from now on (tail -n 0 -f).
    const lines = int('--lines', values.lines, values.follow ? 0 : 1, 10_000) ?? 100;
    const sinceMs = duration('--since', values.since);
    const paths = fleetPaths(values.home);
    const client = runningFleet(paths);
    const status = client ? ((await client.get('/status')) as FleetStatus) : undefined;
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    if (client && status?.hosts) {
      // Across hosts the logs stay on each host; the fleet API reads them from every host's agent.
      const since = sinceMs === undefined ? undefined : Date.now() - sinceMs;
      const queries = hostClones(target, status.clones).map(
        (clone) =>
          new URLSearchParams({
            lines: String(lines),
            ...(clone ? { clone } : {}),
            ...(since !== undefined ? { since: String(since) } : {}),
          }),
      );
      const write = (t: string) => process.stdout.write(t);
      if (!values.follow) for (const q of queries) write(await client.text(`/logs?${q}`));
      else await Promise.all(queries.map((q) => client.follow(`/logs?${q}&follow=1`, write, stop.signal)));
      return 0;
    }
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

/**
 * Across hosts, the clones `target` names: every clone (undefined), one `host:id`, or the clones of a release
 * (its id or a prefix of 4+ characters). CLONES_USAGE when it names nothing.
 */
function hostClones(
  target: string | undefined,
  clones: { id: string; release: string }[],
): (string | undefined)[] {
  // The balancer's access log is on this machine; the fleet API reads it (`clone=balancer`).
  if (target === undefined || target.includes(':') || target === 'balancer') return [target];
  const ofRelease = target.length >= 4 ? clones.filter((c) => c.release.startsWith(target)) : [];
  if (ofRelease.length > 0) return ofRelease.map((c) => c.id);
  throw usageError(
    `"${target}" is neither a clone (host:id) nor the release of a running clone (see clones status)`,
  );
}

/** The running `clones up`, or undefined when there is none (its clones' logs are still on disk). */
function runningFleet(paths: ReturnType<typeof fleetPaths>) {
  try {
    return connectFleet(paths);
  } catch (err) {
    if (err instanceof ClonesError && err.code === 'CLONES_FLEET_NOT_RUNNING') return undefined;
    throw err;
  }
}
