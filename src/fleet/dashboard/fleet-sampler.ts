import type { Fleet } from '../fleet.ts';
import type { FleetStatus } from '../fleet-status.ts';
import { cloneUsage } from '../process-usage.ts';

/** One clone's figures over the last few seconds. */
export interface CloneStats {
  /** Requests per second. */
  rps: number;
  /** Median and 99th percentile latency, in seconds (null without requests). */
  p50: number | null;
  p99: number | null;
  /** Share of requests that were 5xx or failed attempts (0-1). */
  errorRate: number;
  /** CPU use in percent of one core; RSS in bytes (null when not known, e.g. on another host). */
  cpu: number | null;
  rss: number | null;
  /** Seconds since the clone's process started. */
  uptime: number;
}

/** One point of a release's chart. */
export interface ReleasePoint {
  t: number;
  rps: number;
  p99: number | null;
  /** 5xx per second. */
  errors: number;
}

/** What the page gets every second. */
export interface Sample {
  type: 'sample';
  at: number;
  status: FleetStatus;
  clones: Record<string, CloneStats>;
  releases: Record<string, ReleasePoint>;
}

interface TargetCounters {
  requests: number;
  errors: number;
  /** Cumulative bucket counts by upper bound, `+Inf` last. */
  buckets: [number, number][];
}

interface Reading {
  at: number;
  targets: Map<string, TargetCounters>;
  cpu: Map<number, number>;
}

/** Figures are taken over this many seconds, so a quiet second does not read as zero. */
const WINDOW = 5;
/** The charts cover the last 15 minutes at one point a second. */
export const SERIES_POINTS = 900;

/**
 * Reads the fleet once a second: its status, the balancer's per-target counters and latency histograms
 * (from its Prometheus text, the same numbers /metrics shows), and each local clone's CPU and RSS from
 * /proc. Keeps 15 minutes of req/s, p99 and 5xx per release for the charts.
 *
 * @example
 *   const sampler = new FleetSampler(fleet, (sample) => log.push(sample));
 *   sampler.start();
 */
export class FleetSampler {
  readonly #fleet: Fleet;
  readonly #onSample: (s: Sample) => void;
  readonly #readings: Reading[] = [];
  readonly #series = new Map<string, ReleasePoint[]>();
  #timer: NodeJS.Timeout | undefined;
  #last: Sample | undefined;

  constructor(fleet: Fleet, onSample: (s: Sample) => void) {
    this.#fleet = fleet;
    this.#onSample = onSample;
  }

  start(ms = 1000): void {
    this.#timer ??= setInterval(() => this.sample(), ms);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The latest sample (taken now when there is none yet). */
  latest(): Sample {
    return this.#last ?? this.sample();
  }

  /** The charts' points per release, oldest first. */
  series(): Record<string, ReleasePoint[]> {
    return Object.fromEntries(this.#series);
  }

  sample(): Sample {
    const now = Date.now();
    const status = this.#fleet.status();
    const targets = parseTargets(this.#fleet.balancer.metrics());
    const cpu = new Map<number, number>();
    const rss = new Map<number, number>();
    const local = status.hosts === null;
    for (const c of status.clones) {
      const u = cloneUsage(c, local);
      if (u && c.pid) {
        cpu.set(c.pid, u.cpuSeconds);
        rss.set(c.pid, u.rss);
      }
    }
    const reading: Reading = { at: now, targets, cpu };
    this.#readings.push(reading);
    while (this.#readings.length > WINDOW + 1) this.#readings.shift();
    const base = this.#readings[0]!;
    const prev = this.#readings.at(-2) ?? base;
    const seconds = Math.max((now - base.at) / 1000, 0.001);

    const clones: Record<string, CloneStats> = {};
    const perRelease = new Map<string, { rps: number; errors: number; buckets: [number, number][] }>();
    for (const c of status.clones) {
      const key = 'host' in c && c.host ? `${c.host}:${c.id}` : c.id;
      const t = targets.get(c.id);
      const before = base.targets.get(c.id);
      const requests = t ? t.requests - (before?.requests ?? 0) : 0;
      const errors = t ? t.errors - (before?.errors ?? 0) : 0;
      const delta = t ? subtract(t.buckets, before?.buckets) : [];
      const cpuNow = c.pid ? cpu.get(c.pid) : undefined;
      const cpuBefore = c.pid ? prev.cpu.get(c.pid) : undefined;
      const dt = (now - prev.at) / 1000;
      clones[key] = {
        rps: round(requests / seconds),
        p50: quantile(delta, 0.5),
        p99: quantile(delta, 0.99),
        errorRate: requests > 0 ? round(Math.max(errors, 0) / requests, 4) : 0,
        cpu:
          cpuNow !== undefined && cpuBefore !== undefined && dt > 0
            ? round(((cpuNow - cpuBefore) / dt) * 100)
            : null,
        rss: c.pid ? (rss.get(c.pid) ?? null) : null,
        uptime: Math.max(0, Math.round((now - Date.parse(c.startedAt)) / 1000)),
      };
      // The charts show the last second, per release.
      const last = prev.targets.get(c.id);
      const r = perRelease.get(c.release) ?? { rps: 0, errors: 0, buckets: [] };
      if (t) {
        r.rps += t.requests - (last?.requests ?? 0);
        r.errors += Math.max(t.errors - (last?.errors ?? 0), 0);
        r.buckets = add(r.buckets, subtract(t.buckets, last?.buckets));
      }
      perRelease.set(c.release, r);
    }
    const releases: Record<string, ReleasePoint> = {};
    const dt = Math.max((now - prev.at) / 1000, 0.001);
    for (const [release, r] of perRelease) {
      const point = {
        t: now,
        rps: round(prev === reading ? 0 : r.rps / dt),
        p99: quantile(r.buckets, 0.99),
        errors: round(prev === reading ? 0 : r.errors / dt),
      };
      releases[release] = point;
      const series = this.#series.get(release) ?? [];
      series.push(point);
      if (series.length > SERIES_POINTS) series.splice(0, series.length - SERIES_POINTS);
      this.#series.set(release, series);
    }
    // A release with no clone left keeps its history until it scrolls out of the window.
    for (const [release, series] of this.#series) {
      if (perRelease.has(release)) continue;
      if (series.length === 0 || now - series.at(-1)!.t > SERIES_POINTS * 1000) this.#series.delete(release);
    }
    const sample: Sample = { type: 'sample', at: now, status, clones, releases };
    this.#last = sample;
    this.#onSample(sample);
    return sample;
  }
}

const LINE =
  /^clones_balancer_target_(requests_total|errors_total|request_duration_seconds_bucket)\{target="((?:[^"\\]|\\.)*)"[^}]*?(?:le="([^"]+)")?\} (\S+)$/;

/** The per-target counters of the balancer's Prometheus text. */
export function parseTargets(text: string): Map<string, TargetCounters> {
  const out = new Map<string, TargetCounters>();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, id, le, value] = m;
    const t = out.get(id!) ?? { requests: 0, errors: 0, buckets: [] };
    out.set(id!, t);
    if (name === 'requests_total') t.requests = Number(value);
    else if (name === 'errors_total') t.errors = Number(value);
    else t.buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), Number(value)]);
  }
  return out;
}

function subtract(now: [number, number][], before: [number, number][] | undefined): [number, number][] {
  return now.map(([le, n], i) => [le, n - (before?.[i]?.[1] ?? 0)]);
}

function add(a: [number, number][], b: [number, number][]): [number, number][] {
  if (a.length === 0) return b;
  return a.map(([le, n], i) => [le, n + (b[i]?.[1] ?? 0)]);
}

/** A quantile from cumulative buckets, interpolated inside its bucket (as Prometheus does). */
function quantile(buckets: [number, number][], q: number): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, n] of buckets) {
    if (n >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      const inside = n - below;
      return round(lower + (le - lower) * (inside > 0 ? (rank - below) / inside : 1), 6);
    }
    lower = le;
    below = n;
  }
  return lower;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
