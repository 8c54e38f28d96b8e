import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { OptionIssues } from '../option-issues.ts';

/** How big a clone's log may grow and how many rotated files are kept (`c1.log.1` newest ... `c1.log.N`). */
export interface LogRotationOptions {
  /** Bytes a log may reach before it is rotated; default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept per log; default 3. */
  keep?: number;
  /** How often the sizes are checked, in ms; default 5000. */
  everyMs?: number;
}

/** The defaults, in one place. */
export const logRotationDefaults: Readonly<Required<LogRotationOptions>> = Object.freeze({
  maxBytes: 10 * 1024 * 1024,
  keep: 3,
  everyMs: 5000,
});

/**
 * The options with their defaults, validated once (one CLONES_INVALID_OPTION naming every wrong option), then
 * frozen.
 *
 * @example
 *   const o = logRotationOptions({ maxBytes: 1 << 20 }); // { maxBytes: 1048576, keep: 3, everyMs: 5000 }
 */
export function logRotationOptions(options: LogRotationOptions = {}): Readonly<Required<LogRotationOptions>> {
  const o = { ...logRotationDefaults, ...options };
  const issues = new OptionIssues();
  issues.whole('maxBytes', o.maxBytes, 1024, Number.MAX_SAFE_INTEGER);
  issues.whole('keep', o.keep, 1, 1000);
  issues.whole('everyMs', o.everyMs, 10, 86_400_000);
  issues.throwIfAny();
  return Object.freeze(o);
}

/**
 * Rotates `file` when it is larger than `maxBytes`: `file.N-1` -> `file.N` ... `file` -> `file.1`, keeping
 * `keep`. By copy and truncate, like logrotate's `copytruncate`: a clone writes its log through a file
 * descriptor it holds (a detached clone's stdout *is* the file), so a rename would leave it writing into
 * the rotated file. The writers open it O_APPEND, so after the truncation they go on at offset 0. Lines
 * written between the copy and the truncation (microseconds) are lost; that is the known price of
 * copytruncate. Resolves true when it rotated.
 *
 * @example
 *   rotateLog('.clones/logs/c1.log', logRotationOptions({ maxBytes: 1 << 20 }));
 */
export function rotateLog(file: string, options: Readonly<Required<LogRotationOptions>>): boolean {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return false;
  }
  if (size <= options.maxBytes) return false;
  for (let n = options.keep - 1; n >= 1; n--) {
    if (existsSync(`${file}.${n}`)) renameSync(`${file}.${n}`, `${file}.${n + 1}`);
  }
  copyFileSync(file, `${file}.1`);
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
  return true;
}

// One rotator per directory in a process: two supervisors over one logs dir must not rotate a file twice.
const running = new Map<string, { timer: NodeJS.Timeout; users: number }>();

/**
 * Checks every `*.log` in `dir` each `everyMs` and rotates those over `maxBytes`. The timer does not keep
 * the process alive; the returned function stops it (once every starter has stopped it).
 *
 * @example
 *   const stop = startLogRotation(paths.logs);
 *   // ...
 *   stop();
 */
export function startLogRotation(dir: string, options: LogRotationOptions = {}): () => void {
  const o = logRotationOptions(options);
  let entry = running.get(dir);
  if (!entry) {
    const tick = () => {
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith('.log'));
      } catch {
        return;
      }
      for (const name of names) {
        try {
          rotateLog(join(dir, name), o);
        } catch {
          // A file that vanished or cannot be rotated now is tried again at the next tick.
        }
      }
    };
    entry = { timer: setInterval(tick, o.everyMs).unref(), users: 0 };
    running.set(dir, entry);
  }
  entry.users++;
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    const e = running.get(dir);
    if (e && --e.users === 0) {
      clearInterval(e.timer);
      running.delete(dir);
    }
  };
}
