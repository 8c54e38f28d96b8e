import type { WriteStream } from 'node:fs';
import { type CloneInfo, type CloneState, groupOf } from './clone-info.ts';
import type { CloneProc } from './clone-proc.ts';

/**
 * One clone as its supervisor keeps it: the process of the moment (a restart replaces it, the clone and its
 * id stay), its state, its exits and backoff, and its recent output.
 *
 * @example
 *   const clone = new SupervisedClone('c1', release);
 *   clone.info().state; // 'starting'
 */
export class SupervisedClone {
  readonly id: string;
  release: string;
  group: string;
  port = 0;
  child: CloneProc | undefined;
  state: CloneState = 'starting';
  restarts = 0;
  /** When it exited, within the crash-loop window (see restart-policy.ts). */
  exits: number[] = [];
  /** Milliseconds before its next start after an exit. */
  backoff = 0;
  startedAt = Date.now();
  readyMs: number | null = null;
  reason: string | undefined;
  stopping = false;
  registered = false;
  /** Its last output lines (not detached: a detached clone's output goes to its log file only). */
  lines: string[] = [];
  log: WriteStream | undefined;
  /** What the last readiness check got, for the message when the clone never gets ready. */
  checked = '';

  constructor(id: string, release: string) {
    this.id = id;
    this.release = release;
    this.group = groupOf(release);
  }

  info(): CloneInfo {
    return {
      id: this.id,
      release: this.release,
      group: this.group,
      port: this.port,
      pid: this.child?.pid ?? null,
      state: this.state,
      restarts: this.restarts,
      startedAt: new Date(this.startedAt).toISOString(),
      readyMs: this.readyMs,
      ...(this.reason ? { reason: this.reason } : {}),
    };
  }
}
