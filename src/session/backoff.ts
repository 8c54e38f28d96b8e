/**
 * Waits a random time below `min(capMs, 2 ** exponent)` ms: jittered exponential backoff between
 * compare-and-set attempts, so clones that keep colliding spread out instead of colliding again.
 *
 * @example
 *   for (let attempt = 1; ; attempt++) { if (await tryOnce()) break; await backoff(attempt, 20); }
 */
export function backoff(exponent: number, capMs: number): Promise<void> {
  const ms = Math.random() * Math.min(capMs, 2 ** exponent);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
