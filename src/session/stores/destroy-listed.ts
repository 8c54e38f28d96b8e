/**
 * `destroyByUser` for a store that lists the user's sessions and then destroys them one by one (the memory
 * store, DynamoDB, Redis Cluster): every listed session but `exceptKey`, at most `concurrency` at a time.
 * `destroy` answers false for a session that was no longer the user's; answers the ones it destroyed.
 *
 * @example
 *   const done = await destroyListed(await this.listByUser(userId), exceptKey, (s) => this.#destroyBound(s), 25);
 *   return done.length;
 */
export async function destroyListed<T extends { key: string }>(
  listed: readonly T[],
  exceptKey: string | undefined,
  destroy: (session: T) => Promise<boolean>,
  concurrency = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const targets = listed.filter((s) => s.key !== exceptKey);
  const destroyed: T[] = [];
  for (let i = 0; i < targets.length; i += concurrency) {
    const batch = targets.slice(i, i + concurrency);
    const done = await Promise.all(batch.map(destroy));
    batch.forEach((s, j) => {
      if (done[j]) destroyed.push(s);
    });
  }
  return destroyed;
}
