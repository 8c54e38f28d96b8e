/** A server several suites of one test file use: started by the first `acquire`, stopped by the last `release`. */
export interface SharedServer<T> {
  acquire(): Promise<T>;
  release(): Promise<void>;
}

/**
 * Starts `start()` once for the `users` suites of one test file, and stops it when all of them have released
 * it. Suites run one after the other, so the count is given up front rather than counted as they come.
 *
 * @example
 *   const cluster = shared(startRedisCluster, (c) => c.stop(), 2);
 *   const c = await cluster.acquire(); // in each suite's setup
 *   await cluster.release(); // in each suite's cleanup
 */
export function shared<T>(
  start: () => Promise<T>,
  stop: (server: T) => Promise<void>,
  users: number,
): SharedServer<T> {
  let server: Promise<T> | undefined;
  let released = 0;
  return {
    acquire() {
      server ??= start();
      return server;
    },
    async release() {
      released++;
      if (released < users || !server) return;
      await stop(await server);
    },
  };
}
