import type { Candidate, Picker } from './picker.ts';

/**
 * Smooth weighted round-robin (nginx's algorithm): weights 5,1,1 give a,a,b,a,c,a,a rather than bursts, and
 * equal weights give a strict rotation.
 *
 * @example
 *   const picker = roundRobin();
 *   picker.pick([{ id: 'a', weight: 2, outstanding: 0 }, { id: 'b', weight: 1, outstanding: 0 }]);
 */
export function roundRobin(): Picker {
  const current = new Map<string, number>();
  return {
    pick<T extends Candidate>(candidates: readonly T[]): T {
      let total = 0;
      let best = candidates[0]!;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (const c of candidates) {
        const score = (current.get(c.id) ?? 0) + c.weight;
        current.set(c.id, score);
        total += c.weight;
        if (score > bestScore) {
          best = c;
          bestScore = score;
        }
      }
      current.set(best.id, bestScore - total);
      // Targets come and go; forget the ones no longer offered so the map stays small.
      if (current.size > candidates.length * 2 + 8) {
        const live = new Set(candidates.map((c) => c.id));
        for (const id of current.keys()) if (!live.has(id)) current.delete(id);
      }
      return best;
    },
  };
}
