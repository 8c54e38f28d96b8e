/** The timings of restarting a clone that exited (see `supervisorDefaults` for their values). */
export interface RestartTimings {
  initialBackoff: number;
  backoffFactor: number;
  maxBackoff: number;
  crashLoopExits: number;
  crashLoopWindow: number;
  stableAfter: number;
}

/** What the policy reads and keeps of one clone. */
export interface ExitRecord {
  /** When it exited, within the crash-loop window. */
  exits: number[];
  /** Milliseconds before its next start; 0 before its first exit. */
  backoff: number;
  /** When its current process started. */
  startedAt: number;
}

/**
 * When a clone that exited starts again, as PM2 and kamal-proxy do it: after a backoff that grows by
 * `backoffFactor` per crash in a row (capped at `maxBackoff`) and starts again from `initialBackoff` once the
 * clone has run `stableAfter`; `crashLoopExits` exits within `crashLoopWindow` mark it failed.
 *
 * @example
 *   const policy = new RestartPolicy(supervisorDefaults);
 *   policy.exited(clone);
 *   if (policy.crashLooping(clone)) fail(clone, policy.crashLoopReason);
 *   else await sleep(clone.backoff);
 */
export class RestartPolicy {
  readonly #t: RestartTimings;

  constructor(timings: RestartTimings) {
    this.#t = timings;
  }

  /** Records an exit at `now`, and the backoff before the clone's next start. */
  exited(clone: ExitRecord, now = Date.now()): void {
    const t = this.#t;
    clone.exits = [...clone.exits.filter((at) => now - at < t.crashLoopWindow), now];
    const uptime = now - clone.startedAt;
    clone.backoff =
      clone.backoff === 0 || uptime > t.stableAfter
        ? t.initialBackoff
        : Math.min(clone.backoff * t.backoffFactor, t.maxBackoff);
  }

  crashLooping(clone: ExitRecord): boolean {
    return clone.exits.length >= this.#t.crashLoopExits;
  }

  /** Why a crash-looping clone failed, for its `reason`. */
  get crashLoopReason(): string {
    return `crash loop: ${this.#t.crashLoopExits} exits within ${this.#t.crashLoopWindow / 1000} s`;
  }
}
