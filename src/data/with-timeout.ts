import { ClonesError, dataTimeout } from '../errors.ts';

/**
 * Races `work` against `ms`: past it the caller gets CLONES_DATA_TIMEOUT, whatever the driver does. Drivers
 * have their own timeouts too (they free the connection); this one is the promise that nothing hangs.
 *
 * @example
 *   const rows = await withTimeout(pool.query(sql), 2000, 'replica 127.0.0.1:5433');
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(dataTimeout(what, ms)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** What the runtime wrappers count of their calls that failed. */
export interface FailureCounts {
  errors: number;
  timeouts: number;
}

/**
 * Awaits `work`, counting in `counts` a failure and, when it was CLONES_DATA_TIMEOUT, a timeout: the one call
 * path of RuntimeDriver and RuntimeCache.
 *
 * @example
 *   return countFailures(this.counts, withTimeout(call(), 2000, 'cache'));
 */
export async function countFailures<T>(counts: FailureCounts, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    counts.errors++;
    if (err instanceof ClonesError && err.code === 'CLONES_DATA_TIMEOUT') counts.timeouts++;
    throw err;
  }
}
