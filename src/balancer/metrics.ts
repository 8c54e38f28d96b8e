import type { Target } from './target.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The balancer's counters, rendered in the Prometheus text format by the admin API's /metrics.
 * Kept as plain numbers and maps: the hot path only does an increment.
 *
 * @example
 *   metrics.request(200, 0.0012);
 *   res.end(metrics.render(targets));
 */
export class Metrics {
  readonly #requests = new Map<number, number>();
  readonly #buckets = new Array<number>(BUCKETS.length).fill(0);
  #latencySum = 0;
  #latencyCount = 0;
  readonly #retries = new Map<string, number>();
  readonly #rejected = new Map<string, number>();
  readonly #transitions = new Map<string, number>();
  readonly #ejections = new Map<string, number>();
  /** Per target: bucket counts (not cumulative), then count and sum; what p50/p99 per clone come from. */
  readonly #byTarget = new Map<string, { buckets: number[]; count: number; sum: number }>();

  request(status: number, seconds: number, target?: Pick<Target, 'id'>): void {
    if (target) {
      const t = this.#byTarget.get(target.id) ?? {
        buckets: new Array<number>(BUCKETS.length).fill(0),
        count: 0,
        sum: 0,
      };
      this.#byTarget.set(target.id, t);
      t.count++;
      t.sum += seconds;
      const i = BUCKETS.findIndex((le) => seconds <= le);
      if (i >= 0) t.buckets[i]!++;
    }
    this.#requests.set(status, (this.#requests.get(status) ?? 0) + 1);
    this.#latencySum += seconds;
    this.#latencyCount++;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= BUCKETS[i]!) {
        this.#buckets[i]!++;
        break;
      }
    }
  }

  retry(reason: string): void {
    bump(this.#retries, reason);
  }

  rejected(reason: string): void {
    bump(this.#rejected, reason);
  }

  transition(target: string, to: string): void {
    bump(this.#transitions, `target="${esc(target)}",to="${to}"`);
  }

  ejection(target: string): void {
    bump(this.#ejections, target);
  }

  render(targets: Iterable<Target>): string {
    const out: string[] = [];
    out.push('# HELP clones_balancer_requests_total Proxied requests by response status.');
    out.push('# TYPE clones_balancer_requests_total counter');
    for (const [code, n] of this.#requests) out.push(`clones_balancer_requests_total{code="${code}"} ${n}`);
    out.push('# HELP clones_balancer_request_duration_seconds Time from request to the end of the response.');
    out.push('# TYPE clones_balancer_request_duration_seconds histogram');
    let cumulative = 0;
    for (let i = 0; i < BUCKETS.length; i++) {
      cumulative += this.#buckets[i]!;
      out.push(`clones_balancer_request_duration_seconds_bucket{le="${BUCKETS[i]}"} ${cumulative}`);
    }
    out.push(`clones_balancer_request_duration_seconds_bucket{le="+Inf"} ${this.#latencyCount}`);
    out.push(`clones_balancer_request_duration_seconds_sum ${this.#latencySum}`);
    out.push(`clones_balancer_request_duration_seconds_count ${this.#latencyCount}`);
    out.push('# HELP clones_balancer_in_flight Requests in flight per target.');
    out.push('# TYPE clones_balancer_in_flight gauge');
    const list = [...targets];
    for (const t of list)
      out.push(`clones_balancer_in_flight{target="${esc(t.id)}",group="${esc(t.group)}"} ${t.outstanding}`);
    out.push(
      '# HELP clones_balancer_target_healthy 1 when the target passes its health checks and is not ejected.',
    );
    out.push('# TYPE clones_balancer_target_healthy gauge');
    const now = Date.now();
    for (const t of list) {
      const up = t.health === 'healthy' && !t.isEjected(now) ? 1 : 0;
      out.push(`clones_balancer_target_healthy{target="${esc(t.id)}",group="${esc(t.group)}"} ${up}`);
    }
    out.push(
      '# HELP clones_balancer_target_request_duration_seconds Time from request to the end of the response, per target.',
    );
    out.push('# TYPE clones_balancer_target_request_duration_seconds histogram');
    for (const t of list) {
      const h = this.#byTarget.get(t.id);
      if (!h) continue;
      const labels = `target="${esc(t.id)}",group="${esc(t.group)}"`;
      let sum = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        sum += h.buckets[i]!;
        out.push(
          `clones_balancer_target_request_duration_seconds_bucket{${labels},le="${BUCKETS[i]}"} ${sum}`,
        );
      }
      out.push(`clones_balancer_target_request_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      out.push(`clones_balancer_target_request_duration_seconds_sum{${labels}} ${h.sum}`);
      out.push(`clones_balancer_target_request_duration_seconds_count{${labels}} ${h.count}`);
    }
    out.push('# HELP clones_balancer_target_requests_total Requests sent to each target.');
    out.push('# TYPE clones_balancer_target_requests_total counter');
    for (const t of list)
      out.push(
        `clones_balancer_target_requests_total{target="${esc(t.id)}",group="${esc(t.group)}"} ${t.requests}`,
      );
    out.push('# HELP clones_balancer_target_errors_total 5xx responses and failed attempts of each target.');
    out.push('# TYPE clones_balancer_target_errors_total counter');
    for (const t of list)
      out.push(
        `clones_balancer_target_errors_total{target="${esc(t.id)}",group="${esc(t.group)}"} ${t.errors}`,
      );
    const present = new Set(list.map((t) => t.id));
    for (const id of this.#byTarget.keys()) if (!present.has(id)) this.#byTarget.delete(id);
    counter(
      out,
      'clones_balancer_health_transitions_total',
      'Health state changes per target.',
      this.#transitions,
      null,
    );
    counter(
      out,
      'clones_balancer_retries_total',
      'Retried upstream attempts by reason.',
      this.#retries,
      'reason',
    );
    counter(
      out,
      'clones_balancer_ejections_total',
      'Passive-health ejections per target.',
      this.#ejections,
      'target',
    );
    counter(
      out,
      'clones_balancer_rejected_requests_total',
      'Requests refused by request hygiene.',
      this.#rejected,
      'reason',
    );
    return `${out.join('\n')}\n`;
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function esc(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function counter(
  out: string[],
  name: string,
  help: string,
  map: Map<string, number>,
  label: string | null,
): void {
  out.push(`# HELP ${name} ${help}`);
  out.push(`# TYPE ${name} counter`);
  for (const [key, n] of map) out.push(`${name}{${label === null ? key : `${label}="${esc(key)}"`}} ${n}`);
}
