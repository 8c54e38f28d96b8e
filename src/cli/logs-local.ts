import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { usageError } from '../errors.ts';
import { BALANCER_LOG } from '../fleet/fleet-paths.ts';
import { followLogs, type LogLine, loggedClones, readLogLines } from '../fleet/log-reader.ts';

/** What `clones logs` asked for, on the machine the clones run on. */
export interface LocalLogsRequest {
  /** The fleet's logs directory (`.clones/logs`). */
  dir: string;
  /** A clone id, or a release id (a prefix of at least 4 characters), or undefined for every clone. */
  target: string | undefined;
  /** The running fleet's clones (id and release), when `clones up` runs; else only ids with a log are known. */
  clones: { id: string; release: string }[] | undefined;
  lines: number;
  /** Leave out lines stamped before this (ms since the epoch). */
  since: number | undefined;
  follow: boolean;
  signal: AbortSignal;
  write: (text: string) => void;
}

/**
 * The clones to read for `target`: the clone with that id, or the running clones whose release starts
 * with it; every clone with a log when it is undefined. CLONES_USAGE when it names nothing.
 *
 * @example
 *   pickClones('3f2a', [{ id: 'c4', release: '3f2a9c1b...' }], '.clones/logs'); // ['c4']
 */
export function pickClones(
  target: string | undefined,
  clones: { id: string; release: string }[] | undefined,
  dir: string,
): string[] {
  const logged = loggedClones(dir);
  if (target === undefined) return logged;
  // `clones logs balancer`: the balancer's access log (`clones up --access-log`).
  if (target === 'balancer') {
    if (existsSync(join(dir, `${BALANCER_LOG}.log`))) return [BALANCER_LOG];
    throw usageError(`no balancer access log in ${dir}: start the fleet with clones up --access-log`);
  }
  if (logged.includes(target) || clones?.some((c) => c.id === target)) return [target];
  const ofRelease = target.length >= 4 ? (clones ?? []).filter((c) => c.release.startsWith(target)) : [];
  if (ofRelease.length > 0) return ofRelease.map((c) => c.id);
  throw usageError(
    `"${target}" is neither a clone with a log in ${dir} nor the release of a running clone (see clones status)`,
  );
}

/**
 * `clones logs` on the machine the clones run on: the last lines of each picked clone's log (rotated files
 * included), then, with `follow`, every new line until `signal` aborts. Lines are `<clone> <line>`.
 *
 * @example
 *   await localLogs({ dir, target: 'c1', clones: undefined, lines: 100, since: undefined, follow: false,
 *     signal: new AbortController().signal, write: (t) => process.stdout.write(t) });
 */
export async function localLogs(r: LocalLogsRequest): Promise<void> {
  if (!existsSync(r.dir)) throw usageError(`no logs in ${r.dir}`);
  const ids = pickClones(r.target, r.clones, r.dir);
  const print = (l: LogLine) => r.write(`${l.clone === BALANCER_LOG ? 'balancer' : l.clone} ${l.text}\n`);
  for (const id of ids) readLogLines(r.dir, id, { lines: r.lines, since: r.since }).forEach(print);
  if (!r.follow) return;
  // Following every clone picks up the ones that start later (a scale, a deploy, a restart's new log).
  const current = () =>
    r.target === undefined ? loggedClones(r.dir) : ids.filter((id) => existsSync(join(r.dir, `${id}.log`)));
  await followLogs(r.dir, current, print, r.signal);
}
