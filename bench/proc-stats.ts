import { readFileSync } from 'node:fs';

/** USER_HZ: /proc reports CPU time in these ticks (100 on the Linux builds we know of). */
export const TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system) a process has used so far, in ticks of `TICKS_PER_SECOND`; null once it is gone.
 *
 * @example
 *   const before = cpuTicks(pid); await load(); const us = ((cpuTicks(pid)! - before!) * 1e6) / TICKS_PER_SECOND / requests;
 */
export function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return null;
  }
}

/** The middle value (the upper one of an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
