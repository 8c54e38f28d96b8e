import type { Strategy } from './desired-state.ts';
import { DEFAULT_HEALTH_PATH } from './health-path.ts';

/**
 * Fleet defaults, shared by `clones up`/`deploy` flags and the API.
 *
 * @example
 *   clones = flags.clones ?? fleetDefaults.clones;
 */
export const fleetDefaults = Object.freeze({
  clones: 3,
  port: 8080,
  host: '127.0.0.1',
  strategy: 'rolling' as Strategy,
  /** Releases kept on disk; the current, the previous and a pinned canary are kept whatever their age. */
  keepReleases: 5,
  /** Canary weights, in percent, one step after another; 100 promotes. */
  steps: [10, 50, 100] as readonly number[],
  /** How long each canary step is watched before the next. */
  stepWait: 30_000,
  canaryClones: 1,
  /** The canary fails when its 5xx rate exceeds the stable group's by more than this (0.05 = 5 points). */
  canaryMargin: 0.05,
  /** Canary 5xx rates are judged only over at least this many canary responses. */
  canaryMinRequests: 20,
  /** What a clone answers 200 on when ready: the supervisor's gate and the balancer's checks GET it. */
  healthPath: DEFAULT_HEALTH_PATH,
});
