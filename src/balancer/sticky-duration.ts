import { invalidOption } from '../errors.ts';

const SECOND = 1000;
const DAY = 86_400 * SECOND;

/**
 * How long a sticky or group-sticky client may be held, in ms: the bounds every entry point checks.
 *
 * @example
 *   const week = STICKY_DURATION.max;
 */
export const STICKY_DURATION = Object.freeze({ min: SECOND, max: 7 * DAY });

/**
 * True for a whole number of ms within STICKY_DURATION.
 *
 * @example
 *   isStickyDuration(3_600_000); // true
 */
export const isStickyDuration = (ms: unknown): ms is number =>
  Number.isInteger(ms) && (ms as number) >= STICKY_DURATION.min && (ms as number) <= STICKY_DURATION.max;

/**
 * Checks a run-time group stickiness duration (`setGroupStickiness`): undefined (back to the option) or a
 * STICKY_DURATION, else `CLONES_INVALID_OPTION` naming `groupStickiness.duration`.
 *
 * @example
 *   checkGroupStickiness(3_600_000);
 */
export function checkGroupStickiness(duration: number | undefined): void {
  if (duration !== undefined && !isStickyDuration(duration))
    throw invalidOption('groupStickiness.duration', `must be 1 s to 7 days in ms; got ${duration}`);
}
