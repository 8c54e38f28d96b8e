import { healthProbe } from './health-probe.ts';
import type { ResolvedOptions } from './options.ts';
import type { Target } from './target.ts';
import type { TargetSet } from './target-set.ts';

/**
 * Active health checks: GET `healthCheck.path` on every target, every `interval` (with jitter), and every
 * `transitionInterval` while a target is between states, so a failing clone leaves and a recovered one
 * returns within seconds. Each check has its own connection: a pooled socket could hide a dead listener.
 *
 * @example
 *   const checker = new HealthChecker(options, targets);
 *   checker.start(target);
 */
export class HealthChecker {
  readonly #options: ResolvedOptions;
  readonly #set: TargetSet;
  readonly #timers = new Map<Target, NodeJS.Timeout>();

  constructor(options: ResolvedOptions, set: TargetSet) {
    this.#options = options;
    this.#set = set;
  }

  /** Starts checking `target`; the first check runs at once. */
  start(target: Target): void {
    if (!this.#options.healthCheck.enabled || this.#timers.has(target)) return;
    this.#schedule(target, 0);
  }

  stop(target: Target): void {
    const timer = this.#timers.get(target);
    if (timer) clearTimeout(timer);
    this.#timers.delete(target);
  }

  stopAll(): void {
    for (const target of [...this.#timers.keys()]) this.stop(target);
  }

  /** Runs one check now and resolves with whether it passed (tests and the admin API use this). */
  check(target: Target): Promise<boolean> {
    return healthProbe(target, this.#options.healthCheck);
  }

  #schedule(target: Target, delay: number): void {
    const timer = setTimeout(async () => {
      if (!this.#timers.has(target) || target.removed) return;
      const passed = await this.check(target);
      if (!this.#timers.has(target) || target.removed) return;
      this.#set.checkResult(target, passed, Date.now());
      this.#schedule(target, this.#nextDelay(target));
    }, delay);
    timer.unref();
    this.#timers.set(target, timer);
  }

  #nextDelay(target: Target): number {
    const hc = this.#options.healthCheck;
    const changing = target.health === 'unknown' || target.passes > 0 || target.fails > 0;
    const base = changing ? hc.transitionInterval : hc.interval;
    const spread = base * hc.jitter;
    return Math.max(1, Math.round(base - spread + this.#options.random() * 2 * spread));
  }
}
