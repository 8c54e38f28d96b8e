import { readFileSync } from 'node:fs';

/** CPU time and resident memory of one process, as /proc reports them (Linux). */
export interface ProcessUsage {
  /** User + system CPU time, in seconds, since the process started. */
  cpuSeconds: number;
  /** Resident set size, in bytes. */
  rss: number;
  /** When the process started (ms since the epoch). */
  startedAt: number;
}

// USER_HZ is 100 on every Linux Node runs on; /proc/<pid>/stat counts in those ticks.
const TICKS = 100;
const PAGE = 4096;
let bootTime: number | undefined;

/** The system's boot time in ms since the epoch (`btime` of /proc/stat). */
function booted(): number {
  bootTime ??= 1000 * Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
  return bootTime;
}

/**
 * What a clone costs right now: read from /proc, so it works for any pid (a clone adopted from an earlier
 * supervisor too). Undefined when the process is gone or /proc is not there (not Linux).
 *
 * @example
 *   const u = processUsage(pid); // { cpuSeconds: 1.27, rss: 61_448_192, startedAt: 1796189418230 }
 */
export function processUsage(pid: number): ProcessUsage | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const startTicks = Number(fields[19]);
    const rssPages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return {
      cpuSeconds: (utime + stime) / TICKS,
      rss: rssPages * PAGE,
      startedAt: booted() + (startTicks * 1000) / TICKS,
    };
  } catch {
    return undefined;
  }
}

/**
 * A clone's CPU and RSS: read from /proc here when the clone runs on this machine, else what its host agent
 * measured (`usage` in its status). Undefined when neither is known.
 *
 * @example
 *   const u = cloneUsage(clone, status.hosts === null);
 */
export function cloneUsage(
  clone: { pid: number | null; usage?: { cpuSeconds: number; rss: number } | undefined },
  local: boolean,
): { cpuSeconds: number; rss: number } | undefined {
  return local && clone.pid ? processUsage(clone.pid) : clone.usage;
}
