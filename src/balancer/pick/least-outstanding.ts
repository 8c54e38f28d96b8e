import type { Candidate, Picker } from './picker.ts';

/**
 * Least outstanding requests (the default, as ALB's LOR): the target with the fewest in-flight requests wins.
 * Ties, the rule at low load, go to the target furthest behind its weighted share (smooth weighted
 * round-robin credit, updated on every pick), so weights and slow start shape traffic when targets are idle
 * and equal targets end up with equal shares under load.
 *
 * @example
 *   const picker = leastOutstanding();
 */
export function leastOutstanding(): Picker {
  const credit = new Map<string, number>();
  return {
    pick<T extends Candidate>(candidates: readonly T[]): T {
      let min = Number.POSITIVE_INFINITY;
      for (const c of candidates) if (c.outstanding < min) min = c.outstanding;
      let total = 0;
      for (const c of candidates) total += c.weight;
      // A target that is never least loaded must not pile up unbounded credit and then take a burst.
      const cap = total * 8;
      let best = candidates[0]!;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (const c of candidates) {
        const score = Math.min(cap, (credit.get(c.id) ?? 0) + c.weight);
        credit.set(c.id, score);
        if (c.outstanding === min && score > bestScore) {
          best = c;
          bestScore = score;
        }
      }
      credit.set(best.id, bestScore - total);
      if (credit.size > candidates.length * 2 + 8) {
        const live = new Set(candidates.map((c) => c.id));
        for (const id of credit.keys()) if (!live.has(id)) credit.delete(id);
      }
      return best;
    },
  };
}
