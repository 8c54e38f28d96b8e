/**
 * Counts events in fixed windows of time and says when one window holds more than `limit` (the rapid-reset
 * and glitch bounds of an HTTP/2 session).
 *
 * @example
 *   const resets = new WindowCounter(100, 10_000);
 *   if (resets.hit()) session.calm();
 */
export class WindowCounter {
  readonly #limit: number;
  readonly #window: number;
  #count = 0;
  #since = 0;

  constructor(limit: number, window: number) {
    this.#limit = limit;
    this.#window = window;
  }

  /** Counts one event; true once the current window holds more than the limit. */
  hit(now: number = Date.now()): boolean {
    if (now - this.#since > this.#window) {
      this.#since = now;
      this.#count = 0;
    }
    return ++this.#count > this.#limit;
  }
}
