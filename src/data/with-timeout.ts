import { dataTimeout } from '../errors.ts';

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
