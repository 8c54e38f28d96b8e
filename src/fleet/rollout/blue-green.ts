import { type RolloutContext, startShort, trimExcess, untilConverged } from './rollout-context.ts';

/**
 * Blue-green: every new clone starts first (the old ones keep serving), then the guard switches all new
 * requests to the new release at once, and the old clones drain and stop together.
 *
 * @example
 *   await blueGreen({ clones: supervisor, want: new Map([[next, 3]]), guard, weigh });
 */
export function blueGreen(ctx: RolloutContext): Promise<void> {
  return untilConverged(ctx, async (t) => {
    if (t.short.length > 0) return startShort(ctx, t);
    if (t.stale.length > 0) {
      ctx.guard(false);
      ctx.weigh();
      await Promise.all(t.stale.map((c) => ctx.clones.stop(c.id)));
      return;
    }
    return trimExcess(ctx, t);
  });
}
