import type { Candidate, Picker } from './picker.ts';

/**
 * Power of two random choices: draw two distinct targets at random (by weight) and take the one with fewer
 * in-flight requests per unit of weight. Nearly as good as least-outstanding, with no herd on one target
 * when many balancers share the same view.
 *
 * @example
 *   const picker = powerOfTwo(seededRandom(42));
 */
export function powerOfTwo(random: () => number = Math.random): Picker {
  return {
    pick<T extends Candidate>(candidates: readonly T[]): T {
      if (candidates.length === 1) return candidates[0]!;
      let total = 0;
      for (const c of candidates) total += c.weight;
      const a = draw(candidates, total, random, undefined);
      const b = draw(candidates, total - a.weight, random, a);
      // On a tie keep the first draw: it is weighted, so idle targets still get traffic by weight.
      return b.outstanding / b.weight < a.outstanding / a.weight ? b : a;
    },
  };
}

function draw<T extends Candidate>(
  candidates: readonly T[],
  total: number,
  random: () => number,
  skip: T | undefined,
): T {
  let r = random() * total;
  let last = candidates[0]!;
  for (const c of candidates) {
    if (c === skip) continue;
    last = c;
    r -= c.weight;
    if (r < 0) return c;
  }
  return last;
}
