import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { deployLocked } from '../errors.ts';

/** Who holds the deploy lock: written into the lock file so a refused deploy can say who and since when. */
export interface LockInfo {
  pid: number;
  action: string;
  release: string;
  startedAt: string;
}

/**
 * The deploy lock: a file created exclusively, naming its owner's pid. It cannot outlive its owner: a
 * lock whose pid is gone is stale and taken over at once (unlike a mkdir lock left behind by Ctrl-C).
 * The owner is the `clones up` process; a deploy client that disconnects cancels its deploy, which rolls
 * back and then releases the lock.
 *
 * @example
 *   const release = acquireDeployLock(paths.lock, { action: 'deploy', release: digest });
 *   try { await rollout(); } finally { release(); }
 */
export function acquireDeployLock(file: string, what: { action: string; release: string }): () => void {
  const info: LockInfo = { pid: process.pid, ...what, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(info)}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(file);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readLock(file);
      if (holder && isAlive(holder.pid)) {
        throw deployLocked(
          `${holder.action} of ${holder.release.slice(0, 12)} by pid ${holder.pid} since ${holder.startedAt}`,
        );
      }
      try {
        unlinkSync(file); // stale: its owner is dead
      } catch {
        // Someone else removed it first; try again.
      }
    }
  }
  throw deployLocked('the lock file keeps reappearing');
}

/** The current holder, or undefined when the lock is free or stale. */
export function readLock(file: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
