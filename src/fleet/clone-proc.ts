import type { ChildProcess } from 'node:child_process';

/**
 * A clone's process as the supervisor handles it, whoever started it: a child of this supervisor, or one
 * adopted from a supervisor before it (by pid). Both are killed, watched and awaited the same way.
 *
 * @example
 *   const proc = childProc(spawn(process.execPath, [entry]));
 *   proc.kill('SIGTERM');
 *   await proc.exited;
 */
export interface CloneProc {
  readonly pid: number | undefined;
  alive(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process is gone. */
  readonly exited: Promise<void>;
  readonly exitText: () => string;
}

/**
 * A process this supervisor started: its exit is the child's `exit` event.
 *
 * @example
 *   const proc = childProc(child);
 */
export function childProc(child: ChildProcess): CloneProc {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    pid: child.pid,
    alive: () => child.exitCode === null && child.signalCode === null,
    kill: (signal) => child.kill(signal),
    exited,
    exitText: () => `exit code ${child.exitCode ?? child.signalCode}`,
  };
}

/**
 * A process this supervisor did not start: its exit is seen by polling its pid.
 *
 * @example
 *   const proc = adoptedProc(4242);
 *   if (!proc.alive()) forget();
 */
export function adoptedProc(pid: number): CloneProc {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  const exited = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (alive()) return;
      clearInterval(timer);
      resolve();
    }, 200);
    timer.unref();
  });
  return {
    pid,
    alive,
    kill: (signal) => {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    },
    exited,
    exitText: () => 'exited',
  };
}
