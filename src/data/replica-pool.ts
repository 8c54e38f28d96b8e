import type { Logger } from 'pino';
import type { DataMetrics } from './data-metrics.ts';
import type { Driver } from './driver.ts';

/** One replica as `db.status()` shows it. */
export interface ReplicaStatus {
  name: string;
  /** Answered its last position poll. */
  up: boolean;
  /** Takes reads: up, and not further behind than `maxLagBytes` (rejoins at half of it). */
  inRotation: boolean;
  /** Last WAL position it had replayed, as of the last poll. */
  replayLsn: number;
  /** Bytes of WAL it is behind the primary's insert position (or the most advanced replica's, primary down). */
  lagBytes: number;
  inFlight: number;
}

interface Replica extends ReplicaStatus {
  driver: Driver;
}

/**
 * The replicas of one primary, with their replay positions polled every `pollInterval` ms: routing reads the
 * cached positions and never adds a round trip to a read. Lag is measured in WAL bytes, not seconds:
 * `replay_lag` goes stale when replay stops (references/data.md §3). A replica leaves rotation past
 * `maxLagBytes` and comes back below half of it (hysteresis), so one slow replica moves its share elsewhere and
 * never the whole load onto the primary while another replica is fine.
 *
 * @example
 *   const pool = new ReplicaPool(primary, replicas, { maxLagBytes, pollInterval: 50, timeout, logger, metrics });
 *   const replica = pool.pick(minLsn); // undefined: read on the primary
 */
export class ReplicaPool {
  readonly #primary: Driver;
  readonly #replicas: Replica[];
  readonly #options: { maxLagBytes: number; pollInterval: number; timeout: number; logger: Logger };
  readonly #metrics: DataMetrics;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #next = 0;
  #primaryLsn = 0;

  constructor(
    primary: Driver,
    replicas: Driver[],
    options: { maxLagBytes: number; pollInterval: number; timeout: number; logger: Logger },
    metrics: DataMetrics,
  ) {
    this.#primary = primary;
    this.#options = options;
    this.#metrics = metrics;
    // Out of rotation until the first poll says otherwise: an unknown replica may be hours behind.
    this.#replicas = replicas.map((driver) => ({
      driver,
      name: driver.name,
      up: false,
      inRotation: false,
      replayLsn: 0,
      lagBytes: 0,
      inFlight: 0,
    }));
  }

  get size(): number {
    return this.#replicas.length;
  }

  /** Polls once now (so the first reads can use replicas), then every `pollInterval`. */
  async start(): Promise<void> {
    if (this.#replicas.length === 0) return;
    await this.poll();
    this.#timer = setInterval(() => {
      this.#polling ??= this.poll().finally(() => {
        this.#polling = undefined;
      });
    }, this.#options.pollInterval);
    this.#timer.unref();
  }

  /** Reads every replay position and the primary's insert position, all at once, then updates rotation. */
  async poll(): Promise<void> {
    // Each driver bounds its own calls (RuntimeDriver).
    const ask = (d: Driver) => d.position().catch(() => undefined);
    const [primaryLsn, ...positions] = await Promise.all([
      ask(this.#primary),
      ...this.#replicas.map((r) => ask(r.driver)),
    ]);
    if (primaryLsn !== undefined) this.#primaryLsn = Math.max(this.#primaryLsn, primaryLsn);
    // With the primary down nothing new is written: the most advanced replica is the reference.
    const reference = Math.max(this.#primaryLsn, ...positions.map((p) => p ?? 0));
    this.#replicas.forEach((r, i) => {
      const lsn = positions[i];
      r.up = lsn !== undefined;
      if (lsn !== undefined) r.replayLsn = Math.max(r.replayLsn, lsn);
      r.lagBytes = Math.max(0, reference - r.replayLsn);
      const limit = r.inRotation ? this.#options.maxLagBytes : this.#options.maxLagBytes / 2;
      this.#setRotation(r, r.up && r.lagBytes <= limit);
    });
  }

  /**
   * The replica for a read that must see position `minLsn`: among those in rotation that have replayed it, the
   * least behind, then the least busy, then the next in turn. Undefined when none qualifies.
   */
  pick(minLsn: number, exclude?: ReadonlySet<string>): Driver | undefined {
    const candidates = this.#replicas.filter(
      (r) => r.inRotation && r.replayLsn >= minLsn && !exclude?.has(r.name),
    );
    if (candidates.length === 0) return undefined;
    // Lag jitters by a few hundred bytes under steady writes: treat replicas within 1/8 of the bound as equal,
    // or "least lag" would send every read to whichever replica happened to poll ahead.
    const least = Math.min(...candidates.map((r) => r.lagBytes));
    const close = candidates.filter((r) => r.lagBytes - least <= this.#options.maxLagBytes / 8);
    const idle = Math.min(...close.map((r) => r.inFlight));
    const ready = close.filter((r) => r.inFlight === idle);
    const chosen = ready[this.#next++ % ready.length]!;
    return chosen.driver;
  }

  /** True when at least one replica takes reads. */
  anyInRotation(): boolean {
    return this.#replicas.some((r) => r.inRotation);
  }

  /** Counts a read in flight on `driver`, for the least-busy choice. */
  track<T>(driver: Driver, work: Promise<T>): Promise<T> {
    const r = this.#replicas.find((x) => x.driver === driver);
    if (!r) return work;
    r.inFlight++;
    return work.finally(() => {
      r.inFlight--;
    });
  }

  /** A read's connection to `driver` failed: out of rotation now, back when a poll answers. */
  markDown(driver: Driver): void {
    const r = this.#replicas.find((x) => x.driver === driver);
    if (!r) return;
    r.up = false;
    this.#setRotation(r, false);
  }

  /** Raises the known primary position (from a write this clone made) so lag is never under-estimated. */
  notePrimaryLsn(lsn: number): void {
    if (lsn > this.#primaryLsn) this.#primaryLsn = lsn;
  }

  status(): ReplicaStatus[] {
    return this.#replicas.map(({ driver: _, ...status }) => ({ ...status }));
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#polling;
  }

  #setRotation(r: Replica, inRotation: boolean): void {
    if (r.inRotation === inRotation) return;
    r.inRotation = inRotation;
    const log = this.#options.logger;
    if (inRotation) {
      this.#metrics.replicaJoins++;
      log.info({ replica: r.name, lagBytes: r.lagBytes }, 'replica back in rotation');
    } else {
      this.#metrics.replicaLeaves++;
      log.warn({ replica: r.name, up: r.up, lagBytes: r.lagBytes }, 'replica out of rotation');
    }
  }
}
