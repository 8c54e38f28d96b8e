/** The default latency buckets, in seconds: a store or database call from half a millisecond to 10 s. */
const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Observations of one latency: a count per bucket (not cumulative: one increment per observation), their
 * count and sum. Rendered cumulatively by PrometheusText.
 *
 * @example
 *   const h = new Histogram();
 *   h.observe(0.0021);
 */
export class Histogram {
  readonly bounds: readonly number[];
  readonly buckets: number[];
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    this.bounds = bounds;
    this.buckets = new Array<number>(bounds.length).fill(0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    const i = this.bounds.findIndex((le) => value <= le);
    if (i >= 0) this.buckets[i]!++;
  }
}
