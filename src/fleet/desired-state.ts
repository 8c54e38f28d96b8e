import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type Strategy = 'rolling' | 'blue-green' | 'canary';

/**
 * What the fleet should run. The supervisor converges to it; `deploy`, `rollback` and `scale` only ever
 * write a new record with a higher epoch. A per-host agent would pull this same record.
 */
export interface DesiredState {
  /** The release (sha256) every clone should run. */
  release: string;
  /** Bumped on every change; a record with a lower epoch is never applied over a higher one. */
  epoch: number;
  /** How clones move to `release`: one at a time (rolling) or a full new group first (blue-green). */
  strategy: Strategy;
  /** Balancer group weights by release (0-1000); empty means all traffic to `release`. */
  weights: Record<string, number>;
  /** How many clones of `release` (across hosts: on each host that `hostClones` does not name). */
  clones: number;
  /**
   * Across hosts: hosts that run another number of clones than `clones`, by name (a host's own `clones` in
   * clones.json, or `clones scale N --host NAME`). `clones scale N` without `--host` clears it.
   */
  hostClones?: Record<string, number> | undefined;
  /** A canary release run beside `release` while a canary deploy is in progress. */
  canary?: { release: string; clones: number } | undefined;
  /**
   * Group stickiness (ms) while this record applies: how long a client keeps the release group it was
   * given. Set by `deploy --sticky`; absent means the balancer's own `groupStickiness.duration`.
   */
  sticky?: number | undefined;
}

/**
 * The clones of `state.release` that host `name` runs: its own count, else the fleet's.
 *
 * @example
 *   clonesOn({ clones: 2, hostClones: { big: 6 } }, 'big'); // 6
 */
export function clonesOn(state: Pick<DesiredState, 'clones' | 'hostClones'>, name: string): number {
  return state.hostClones?.[name] ?? state.clones;
}

/**
 * Where the desired state lives: the boundary a per-host agent pulls from. Here a file in `.clones/`;
 * the same interface fits an HTTP endpoint or an object-store key for many hosts.
 *
 * @example
 *   const source: DesiredStateSource = new DesiredStateFile(paths.desired);
 *   source.write({ ...source.read()!, epoch: source.read()!.epoch + 1, clones: 5 });
 */
export interface DesiredStateSource {
  read(): DesiredState | undefined;
  write(state: DesiredState): void;
}

/**
 * The desired state as a JSON file, replaced atomically (write to a temporary file, then rename).
 *
 * @example
 *   const desired = new DesiredStateFile('.clones/desired.json');
 *   desired.read()?.release;
 */
export class DesiredStateFile implements DesiredStateSource {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  read(): DesiredState | undefined {
    if (!existsSync(this.#file)) return undefined;
    try {
      return JSON.parse(readFileSync(this.#file, 'utf8')) as DesiredState;
    } catch {
      return undefined;
    }
  }

  write(state: DesiredState): void {
    writeJsonAtomic(this.#file, state);
  }
}

/** One line of `.clones/history.json`. */
export interface HistoryEntry {
  release: string;
  epoch: number;
  at: string;
  action: 'up' | 'deploy' | 'rollback' | 'scale';
  strategy: Strategy;
  outcome: 'ok' | 'failed';
  reason?: string;
}

/**
 * The fleet's history, newest last: what `clones releases` shows and `clones rollback` goes back along.
 *
 * @example
 *   appendHistory(paths.history, { release, epoch, at: new Date().toISOString(), action: 'deploy',
 *     strategy: 'rolling', outcome: 'ok' });
 */
export function readHistory(file: string): HistoryEntry[] {
  if (!existsSync(file)) return [];
  try {
    const list = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(list) ? (list as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

export function appendHistory(file: string, entry: HistoryEntry, limit = 100): void {
  writeJsonAtomic(file, [...readHistory(file), entry].slice(-limit));
}

/**
 * The release a rollback goes to: the newest successfully deployed release other than `current`.
 *
 * @example
 *   const target = previousRelease(readHistory(paths.history), desired.release);
 */
export function previousRelease(history: HistoryEntry[], current: string): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const e = history[i]!;
    if (e.outcome === 'ok' && e.release !== current) return e.release;
  }
  return undefined;
}

export function writeJsonAtomic(file: string, value: unknown, mode = 0o600): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  renameSync(tmp, file);
}
