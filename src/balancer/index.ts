/**
 * clones/balancer: the L7 load balancer that spreads requests over identical clones.
 *
 * @example
 *   import { createBalancer } from 'clones/balancer';
 *   const lb = createBalancer({ targets: [{ id: 'c1', url: 'http://127.0.0.1:3001' }] });
 *   await lb.listen(8080);
 */
export { createBalancer } from './balancer.ts';
export type {
  Balancer,
  BalancerState,
  DrainOptions,
  GroupState,
  Health,
  TargetState,
} from './balancer-contract.ts';
export {
  type BalancerOptions,
  balancerDefaults,
  resolveOptions,
  type TargetSpec,
} from './options.ts';
export { createPicker } from './pick/create-picker.ts';
export type { Candidate, Picker, PickerName } from './pick/picker.ts';
export { isStickyDuration, STICKY_DURATION } from './sticky-duration.ts';
