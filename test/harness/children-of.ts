import { readdirSync, readFileSync } from 'node:fs';

/**
 * The pids whose parent is `pid`, read from /proc (Linux): a postmaster's backends, the haproxy a
 * `clones up` runs. Optionally only those whose command name (`/proc/<pid>/comm`) is `comm`.
 *
 * @example
 *   const backends = childrenOf(postmasterPid);
 *   const haproxies = childrenOf(upPid, 'haproxy');
 */
export function childrenOf(pid: number, comm?: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the parent pid is the second field after it.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (Number(stat.slice(close + 2).split(' ')[1]) !== pid) continue;
      if (comm !== undefined && stat.slice(stat.indexOf('(') + 1, close) !== comm) continue;
      out.push(Number(name));
    } catch {
      // The process ended while we read.
    }
  }
  return out;
}
