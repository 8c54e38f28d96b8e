import { ClonesError, deployCancelled } from '../../errors.ts';
import type { CloneInfo } from '../clone-info.ts';

/**
 * The clones a rollout moves: today's Supervisor on one host, or the clones of one or many hosts reached
 * through their agents. `start` resolves once the clone serves behind the balancer; `stop` drains it there
 * first.
 *
 * @example
 *   const driver: CloneDriver = supervisor;
 *   await driver.start(release);
 */
export interface CloneDriver {
  list(): CloneInfo[];
  start(release: string): Promise<CloneInfo>;
  stop(id: string, drainTimeout?: number): Promise<void>;
}

/**
 * What a strategy needs: the clones, how many of each release are wanted, and the balancer's version guard
 * and group weights (which the fleet computes, since they span every clone).
 *
 * @example
 *   await rolling({ clones: supervisor, want: new Map([[release, 3]]), guard, weigh, signal });
 */
export interface RolloutContext {
  clones: CloneDriver;
  want: ReadonlyMap<string, number>;
  /** The version guard: the wanted releases, plus those of clones still serving while `includeServing`. */
  guard(includeServing: boolean): void;
  /** Group weights follow the serving clones (or the record's weights, for a canary). */
  weigh(): void;
  signal?: AbortSignal | undefined;
}

/** Where the clones stand against `want`: clones of unwanted releases, releases short or over their count. */
export interface Tally {
  live: CloneInfo[];
  stale: CloneInfo[];
  short: [release: string, n: number][];
  excess: [release: string, n: number][];
  count(release: string): number;
}

/**
 * Counts the live (not failed) clones against `want`.
 *
 * @example
 *   const { stale, short } = tally(ctx);
 */
export function tally(ctx: RolloutContext): Tally {
  const live = ctx.clones.list().filter((c) => c.state !== 'failed');
  const count = (release: string) => live.filter((c) => c.release === release).length;
  return {
    live,
    count,
    stale: live.filter((c) => !ctx.want.has(c.release)),
    short: [...ctx.want].filter(([release, n]) => count(release) < n),
    excess: [...ctx.want].filter(([release, n]) => count(release) > n),
  };
}

/**
 * Starts every missing clone at once (scale up, or blue-green's new group).
 *
 * @example
 *   await startShort(ctx, tally(ctx));
 */
export async function startShort(ctx: RolloutContext, t: Tally): Promise<void> {
  const starts = t.short.flatMap(([release, n]) =>
    Array.from({ length: n - t.count(release) }, () => release),
  );
  await Promise.all(starts.map((release) => ctx.clones.start(release)));
  ctx.weigh();
}

/**
 * Stops the clones of a release beyond its wanted count (scale down).
 *
 * @example
 *   if (t.excess.length > 0) await trimExcess(ctx, t);
 */
export async function trimExcess(ctx: RolloutContext, t: Tally): Promise<void> {
  const [release, n] = t.excess[0]!;
  const extra = t.live.filter((c) => c.release === release).slice(n);
  await Promise.all(extra.map((c) => ctx.clones.stop(c.id)));
}

/**
 * The loop every strategy shares: tally, set the guard (old releases pass while their clones are still
 * there), stop when nothing is short, stale or in excess, else take the strategy's next `step`. Ends with
 * the guard on the wanted releases only. Throws when `signal` aborts (see throwIfStopped).
 *
 * @example
 *   await untilConverged(ctx, async (t) => { if (t.short.length > 0) await startShort(ctx, t); });
 */
export async function untilConverged(ctx: RolloutContext, step: (t: Tally) => Promise<void>): Promise<void> {
  for (;;) {
    throwIfStopped(ctx.signal);
    const t = tally(ctx);
    ctx.guard(t.stale.length > 0);
    if (t.short.length === 0 && t.stale.length === 0 && t.excess.length === 0) break;
    await step(t);
  }
  ctx.guard(false);
  ctx.weigh();
}

/**
 * Throws why a deploy must stop when its signal is aborted: the operator's abort, or its client gone.
 *
 * @example
 *   throwIfStopped(ctx.signal);
 */
export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const reason = signal.reason as unknown;
  throw reason instanceof ClonesError ? reason : deployCancelled();
}
