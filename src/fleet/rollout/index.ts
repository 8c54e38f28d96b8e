/**
 * Rollout strategies, one file each, all driving a `CloneDriver` through a `RolloutContext`.
 *
 * @example
 *   await strategyFor(state.strategy)(ctx);
 */
import type { Strategy } from '../desired-state.ts';
import { blueGreen } from './blue-green.ts';
import { rolling } from './rolling.ts';
import type { RolloutContext } from './rollout-context.ts';

export { blueGreen } from './blue-green.ts';
export { type CanaryDeps, type CanaryPlan, canarySteps } from './canary.ts';
export { rolling } from './rolling.ts';
export { type CloneDriver, type RolloutContext, type Tally, tally } from './rollout-context.ts';

/**
 * How a desired-state record's clones are converged: blue-green starts the whole new group first;
 * rolling (and a canary's records, which only add or remove the canary clones) goes one clone at a time.
 *
 * @example
 *   await strategyFor('blue-green')(ctx);
 */
export function strategyFor(strategy: Strategy): (ctx: RolloutContext) => Promise<void> {
  return strategy === 'blue-green' ? blueGreen : rolling;
}
