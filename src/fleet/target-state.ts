import type { Balancer } from '../balancer/index.ts';

/**
 * One balancer target as the balancer's `state()` reports it (its admin API's JSON): what the fleet reads
 * for health, in-flight requests and the canary's error rates.
 *
 * @example
 *   const unhealthy = targetStates(balancer).filter((t) => t.health !== 'healthy');
 */
export interface TargetState {
  id: string;
  url: string;
  group: string;
  release: string;
  weight: number;
  health: 'unknown' | 'healthy' | 'unhealthy';
  ejected: boolean;
  draining: boolean;
  inFlight: number;
  requests: number;
  errors: number;
}

/**
 * The balancer's targets, typed. The balancer reports them as plain JSON records (its admin API's shape);
 * this is the one place the fleet reads them as `TargetState`.
 *
 * @example
 *   const byId = new Map(targetStates(fleet.balancer).map((t) => [t.id, t]));
 */
export function targetStates(balancer: Pick<Balancer, 'state'>): TargetState[] {
  return balancer.state().targets as unknown as TargetState[];
}
