import type { Strategy } from './desired-state.ts';
import { fleetDefaults } from './fleet-defaults.ts';
import type { CanaryPlan } from './rollout/index.ts';

/**
 * What `clones deploy` asks for: the release, and how to roll it out; every knob left out takes its
 * default (`fleetDefaults`, or the balancer's option for `sticky`).
 *
 * @example
 *   await fleet.deploy({ release, strategy: 'canary', steps: [10, 100], stepWait: 60_000 }, emit);
 */
export interface DeployRequest {
  release: string;
  strategy?: Strategy;
  steps?: readonly number[];
  stepWait?: number;
  canaryClones?: number;
  canaryMargin?: number;
  /** Group stickiness for this deploy, in ms (1 s to 7 days); default: the balancer's option. */
  sticky?: number;
  /** Hosts per rolling batch: a number or a percentage (`25%`); default 1. */
  batch?: number | string;
  /** Deploy without hosts whose agent does not answer; they catch up when they return. */
  skipUnreachable?: boolean;
}

/**
 * A deploy request's canary knobs with the defaults filled in.
 *
 * @example
 *   await canarySteps(prev, release, canaryPlan(request), context);
 */
export function canaryPlan(request: DeployRequest): CanaryPlan {
  return {
    steps: request.steps ?? fleetDefaults.steps,
    stepWait: request.stepWait ?? fleetDefaults.stepWait,
    canaryClones: request.canaryClones ?? fleetDefaults.canaryClones,
    margin: request.canaryMargin ?? fleetDefaults.canaryMargin,
    minRequests: fleetDefaults.canaryMinRequests,
    sticky: request.sticky,
  };
}
