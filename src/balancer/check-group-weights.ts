import { badTargetSpec } from '../errors.ts';

/**
 * Checks group weights given at run time (`setGroupWeights`, the admin API's PUT /groups) before any is set:
 * each a whole number 0-1000, else `CLONES_BALANCER_BAD_SPEC` naming the group.
 *
 * @example
 *   checkGroupWeights({ blue: 90, green: 10 });
 */
export function checkGroupWeights(weights: Record<string, number>): void {
  for (const [name, weight] of Object.entries(weights)) {
    if (!Number.isInteger(weight) || weight < 0 || weight > 1000) {
      throw badTargetSpec(`groups.${name}`, `weight must be a whole number 0-1000; got ${String(weight)}`);
    }
  }
}
