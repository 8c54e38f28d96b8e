/**
 * Envoy's retry budget: retries in flight may not exceed `percent`% of the requests in flight (but at least
 * `min`), so a failing fleet is not hit by a retry storm on top of its normal load.
 *
 * @example
 *   const budget = new RetryBudget(20, 3);
 *   if (budget.tryAcquire(activeRequests)) retry(); // later: budget.release()
 */
export class RetryBudget {
  readonly #percent: number;
  readonly #min: number;
  #inFlight = 0;

  constructor(percent: number, min: number) {
    this.#percent = percent;
    this.#min = min;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  tryAcquire(activeRequests: number): boolean {
    const allowed = Math.max(this.#min, Math.floor((activeRequests * this.#percent) / 100));
    if (this.#inFlight >= allowed) return false;
    this.#inFlight++;
    return true;
  }

  release(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }
}
