import type { DesiredState } from './desired-state.ts';

/**
 * The release a crashed clone restarts as: the release it ran while that release is still wanted (the
 * desired one, or the canary beside it during a canary deploy), else the desired release: a clone never
 * comes back as a release the fleet has moved away from, and a canary clone never comes back as the
 * stable release (which would quietly shrink the canary and hand its clients the stable code).
 *
 * @example
 *   releaseToRestart({ release: 'aa..', canary: { release: 'bb..', clones: 1 }, ... }, 'bb..'); // 'bb..'
 *   releaseToRestart({ release: 'aa..', ... }, 'cc..'); // 'aa..'
 */
export function releaseToRestart(state: DesiredState | undefined, ran: string): string {
  if (!state) return ran;
  if (ran === state.release || ran === state.canary?.release) return ran;
  return state.release;
}
