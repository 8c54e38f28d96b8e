import { type RolloutContext, startShort, tally, trimExcess, untilConverged } from './rollout-context.ts';

/**
 * Rolling, surge style: one new clone in (behind its health gate), then one old clone drained and out,
 * until no clone of an unwanted release is left. Without old clones to replace, missing clones start
 * together (scale up). While old clones still serve, the guard lets their release through; once every
 * wanted clone is up, it refuses the old release for good, before the last old clone drains.
 *
 * @example
 *   await rolling({ clones: supervisor, want: new Map([[next, 3]]), guard, weigh });
 */
export function rolling(ctx: RolloutContext): Promise<void> {
  return untilConverged(ctx, async (t) => {
    if (t.short.length > 0) {
      if (t.stale.length === 0) return startShort(ctx, t);
      await ctx.clones.start(t.short[0]![0]);
      ctx.weigh();
    }
    if (t.stale.length > 0) {
      const last = t.stale.length === 1 && tally(ctx).short.length === 0;
      ctx.guard(!last);
      ctx.weigh();
      return ctx.clones.stop(t.stale[0]!.id);
    }
    return trimExcess(ctx, t);
  });
}
