import type { Socket } from 'node:net';
import type { Health, TargetState } from './balancer-contract.ts';
import type { TargetSpec } from './options.ts';
import { parseTargetSpec } from './parse-target-spec.ts';
import { UpstreamPool, type UpstreamPoolOptions } from './upstream-pool.ts';
import type { WsFrameBoundary } from './ws-frame-boundary.ts';

export type { Health } from './balancer-contract.ts';

/** A live pair of sockets of a proxied WebSocket (or other upgrade), closed together. */
export interface UpgradedPair {
  client: Socket;
  upstream: Socket;
  /** Set while draining closes it, so the close frame is flushed before the client socket goes. */
  closing?: boolean;
  /** Where the clone-to-client stream stands between frames, so a close frame can be inserted there. */
  frames: WsFrameBoundary;
}

/** The passive-health settings an ejection needs (options.passive). */
export interface EjectionRule {
  readonly baseEjection: number;
  readonly maxEjection: number;
}

/**
 * One clone as the balancer sees it: where it is, its group and release, and its state. The state changes
 * only through the transition methods below, each of which tells the owning set (`onChange`) when routing
 * may change, so that nobody has to remember to.
 *
 * @example
 *   const t = new Target({ id: 'c1', url: 'http://127.0.0.1:3001' }, poolOptions, () => version++);
 *   t.drain(); // the set rebuilds its candidate lists
 */
export class Target {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly group: string;
  readonly release: string;
  /** The weight it was registered with. */
  readonly baseWeight: number;
  /** Keep-alive connections to the clone. */
  readonly pool: UpstreamPool;
  readonly upgraded = new Set<UpgradedPair>();
  readonly #onChange: () => void;
  #weight: number;
  #health: Health = 'unknown';
  #healthySince = 0;
  #passes = 0;
  #fails = 0;
  #outstanding = 0;
  #draining = false;
  #removed = false;
  #consecutiveFailures = 0;
  #ejectedUntil = 0;
  #ejections = 0;
  #lastEjectionEnd = 0;
  #requests = 0;
  #errors = 0;

  constructor(spec: TargetSpec, pool: UpstreamPoolOptions, onChange: () => void = () => {}) {
    const parsed = parseTargetSpec(spec);
    this.id = parsed.id;
    this.url = parsed.url;
    this.host = parsed.host;
    this.port = parsed.port;
    this.group = parsed.group;
    this.release = parsed.release;
    this.baseWeight = parsed.weight;
    this.#weight = parsed.weight;
    this.pool = new UpstreamPool(this.host, this.port, this.url.slice('http://'.length), pool);
    this.#onChange = onChange;
  }

  /** The weight pickers use now: `baseWeight`, scaled down during slow start. */
  get weight(): number {
    return this.#weight;
  }
  get health(): Health {
    return this.#health;
  }
  /** When it last became healthy: the start of its slow-start ramp (0: no ramp). */
  get healthySince(): number {
    return this.#healthySince;
  }
  /** Consecutive active-check results against the current state, toward a transition. */
  get passes(): number {
    return this.#passes;
  }
  get fails(): number {
    return this.#fails;
  }
  /** Requests in flight to it. */
  get outstanding(): number {
    return this.#outstanding;
  }
  get draining(): boolean {
    return this.#draining;
  }
  get removed(): boolean {
    return this.#removed;
  }
  /** Passive health: consecutive gateway failures, ejection end time and how many ejections in a row. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }
  get ejectedUntil(): number {
    return this.#ejectedUntil;
  }
  get ejections(): number {
    return this.#ejections;
  }
  get requests(): number {
    return this.#requests;
  }
  /** Responses with a 5xx status from this target: the canary gate compares groups on it. */
  get errors(): number {
    return this.#errors;
  }

  isEjected(now: number): boolean {
    return this.#ejectedUntil > now;
  }

  /** A request was sent its way (an attempt): counted until `finished()`. */
  started(): void {
    this.#outstanding++;
    this.#requests++;
  }

  /** The attempt started by `started()` let go of the target, answered or not. */
  finished(): void {
    this.#outstanding--;
  }

  /** The target answered with `status`; a 5xx counts as one of its errors. */
  responded(status: number): void {
    if (status >= 500) this.#errors++;
  }

  /** No new requests from now on; what is in flight finishes. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#onChange();
  }

  /** Taken out of its set for good: health checks stop and nothing routes to it. */
  remove(): void {
    this.#removed = true;
    this.#onChange();
  }

  /**
   * Feeds one active health-check result; returns the state to enter when it completes a transition.
   * An unknown target that fails its first check is unhealthy at once: it never served anyone.
   */
  checkResult(passed: boolean, healthyThreshold: number, unhealthyThreshold: number): Health | undefined {
    if (passed) {
      this.#fails = 0;
      if (this.#health === 'healthy') return undefined;
      this.#passes++;
      return this.#passes >= healthyThreshold ? 'healthy' : undefined;
    }
    this.#passes = 0;
    if (this.#health === 'unhealthy') return undefined;
    this.#fails++;
    return this.#health === 'unknown' || this.#fails >= unhealthyThreshold ? 'unhealthy' : undefined;
  }

  /**
   * Enters a health state. Becoming healthy ends any ejection and, with `ramp`, starts the slow-start ramp
   * at `now`; returns the state it left.
   */
  enter(health: Health, now: number, ramp = false): Health {
    const from = this.#health;
    this.#health = health;
    this.#passes = 0;
    this.#fails = 0;
    if (health === 'healthy') {
      this.#healthySince = ramp ? now : 0;
      this.#ejectedUntil = 0;
      this.#consecutiveFailures = 0;
    }
    this.#onChange();
    return from;
  }

  /** Passive health: one more gateway failure in a row; returns how many there are now. */
  recordFailure(): number {
    return ++this.#consecutiveFailures;
  }

  /** Passive health: an answer that was not a gateway failure ends the run of failures. */
  recordSuccess(): void {
    this.#consecutiveFailures = 0;
  }

  /**
   * Ejects it from `now`, each ejection in a row longer (`baseEjection` times the count, at most
   * `maxEjection`); a target back for longer than `maxEjection` starts the count again. Returns the duration.
   */
  eject(now: number, rule: EjectionRule): number {
    this.#ejections = now - this.#lastEjectionEnd > rule.maxEjection ? 1 : this.#ejections + 1;
    const duration = Math.min(rule.baseEjection * this.#ejections, rule.maxEjection);
    this.#ejectedUntil = now + duration;
    this.#lastEjectionEnd = this.#ejectedUntil;
    this.#consecutiveFailures = 0;
    this.#onChange();
    return duration;
  }

  /**
   * The slow-start weight at `now`: a linear ramp from 10% to `baseWeight` over `slowStart` ms after it
   * became healthy. Not a routing change (the candidate list stays), so the set is not told.
   */
  ramp(now: number, slowStart: number): void {
    const elapsed = now - this.#healthySince;
    this.#weight =
      elapsed >= slowStart
        ? this.baseWeight
        : Math.max(this.baseWeight * 0.1, (this.baseWeight * elapsed) / slowStart);
  }

  /** What the admin API shows. */
  toJSON(now = Date.now()): TargetState {
    const ejected = this.isEjected(now);
    return {
      id: this.id,
      url: this.url,
      group: this.group,
      release: this.release,
      weight: this.baseWeight,
      health: this.#health,
      ejected,
      ejectedUntil: ejected ? new Date(this.#ejectedUntil).toISOString() : null,
      draining: this.#draining,
      inFlight: this.#outstanding,
      websockets: this.upgraded.size,
      requests: this.#requests,
      errors: this.#errors,
    };
  }
}
