import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** One line of a clone's log. `at` is its time when the line (or one before it) says it, in ms. */
export interface LogLine {
  clone: string;
  text: string;
  at: number | undefined;
}

/**
 * Clone ids that have a log in `dir` (`c1.log` -> `c1`), in numeric order.
 *
 * @example
 *   loggedClones('.clones/logs'); // ['c1', 'c2', 'c10']
 */
export function loggedClones(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^c\d+\.log$/.test(n))
    .map((n) => n.slice(0, -4))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/**
 * The time a log line carries: pino's `"time"` (ms or ISO) in a JSON line, or an ISO-8601 stamp at its
 * start. Clones' stdout has no stamp of its own (a detached clone writes straight into the file), so this
 * is what `--since` can go by.
 *
 * @example
 *   lineTime('{"level":30,"time":1764620000000,"msg":"up"}'); // 1764620000000
 */
export function lineTime(text: string): number | undefined {
  if (text.startsWith('{')) {
    const m = /"time":\s*(?:(\d{10,})|"([^"]+)")/.exec(text);
    if (m) return m[1] ? Number(m[1]) : Date.parse(m[2]!) || undefined;
  }
  const iso = /^\[?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)/.exec(text);
  if (iso) return Date.parse(iso[1]!) || undefined;
  // An access log line (Common/Combined Log Format): `… [01/Dec/2026:23:01:07 +0000] "GET …`.
  const clf = / \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d:\d\d:\d\d) ([+-]\d{4})\] "/.exec(text);
  return clf ? Date.parse(`${clf[2]} ${clf[1]} ${clf[3]} ${clf[4]} GMT${clf[5]}`) || undefined : undefined;
}

/**
 * The lines of one clone's log, oldest first, across its rotated files (`c1.log.3` ... `c1.log.1`, `c1.log`).
 * With `since` (ms): files last written before it are skipped, and lines stamped before it are left out;
 * a line without a stamp takes the stamp of the line before it (one with none before it is kept).
 * `lines` keeps the last N.
 *
 * @example
 *   readLogLines('.clones/logs', 'c1', { lines: 100, since: Date.now() - 600_000 });
 */
export function readLogLines(
  dir: string,
  clone: string,
  options: { lines?: number; since?: number } = {},
): LogLine[] {
  const base = join(dir, `${clone}.log`);
  const files: string[] = [];
  for (let n = 1; existsSync(`${base}.${n}`); n++) files.unshift(`${base}.${n}`);
  if (existsSync(base)) files.push(base);
  const out: LogLine[] = [];
  for (const file of files) {
    if (options.since !== undefined && statSync(file).mtimeMs < options.since) continue;
    let at: number | undefined;
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (!text) continue;
      at = lineTime(text) ?? at;
      if (options.since !== undefined && at !== undefined && at < options.since) continue;
      out.push({ clone, text, at });
    }
  }
  if (options.lines === undefined) return out;
  return options.lines === 0 ? [] : out.slice(-options.lines);
}

/**
 * Follows clones' logs like `tail -F`: calls `onLine` for each complete line written after the call, for
 * the clones `ids()` names at each poll (so clones that appear later are followed too). A log that shrank
 * was rotated (copy and truncate): it is read again from its start. Resolves when `signal` aborts.
 *
 * @example
 *   const ac = new AbortController();
 *   await followLogs('.clones/logs', () => loggedClones('.clones/logs'), (l) => print(l), ac.signal);
 */
export async function followLogs(
  dir: string,
  ids: () => string[],
  onLine: (line: LogLine) => void,
  signal: AbortSignal,
  everyMs = 250,
): Promise<void> {
  const offsets = new Map<string, number>();
  const partial = new Map<string, string>();
  const sizeOf = (id: string) => {
    try {
      return statSync(join(dir, `${id}.log`)).size;
    } catch {
      return 0;
    }
  };
  for (const id of ids()) offsets.set(id, sizeOf(id));
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, everyMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
    for (const id of ids()) {
      const size = sizeOf(id);
      let from = offsets.get(id) ?? 0;
      if (size < from) from = 0;
      if (size === from) continue;
      const text = (partial.get(id) ?? '') + readRange(join(dir, `${id}.log`), from, size);
      offsets.set(id, size);
      const lines = text.split('\n');
      partial.set(id, lines.pop() ?? '');
      for (const l of lines) if (l) onLine({ clone: id, text: l, at: lineTime(l) });
    }
  }
}

function readRange(file: string, from: number, to: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const n = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
