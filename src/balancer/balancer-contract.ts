import type { AddressInfo } from 'node:net';
import type { ResolvedOptions, TargetSpec } from './options.ts';
import type { CertificateInfo } from './tls-material.ts';

/** A target's active health: unknown until its first check, then healthy or unhealthy. */
export type Health = 'unknown' | 'healthy' | 'unhealthy';

/**
 * One target as `state()`, `target(id)`, `addTarget` and the admin API report it (plain JSON). `requests` and
 * `errors` are counted by the built-in engine only (HAProxy keeps its own, in its metrics).
 *
 * @example
 *   const t = balancer.target('c1');
 *   if (t?.health === 'healthy' && !t.draining) console.log(`${t.id} serves ${t.inFlight} requests`);
 */
export type TargetState = {
  id: string;
  url: string;
  group: string;
  release: string;
  weight: number;
  health: Health;
  ejected: boolean;
  /** When the passive ejection ends (ISO 8601), or null when not ejected. */
  ejectedUntil: string | null;
  draining: boolean;
  inFlight: number;
  websockets: number;
  requests?: number;
  errors?: number;
};

/**
 * One group of targets as `state()` reports it.
 *
 * @example
 *   const blue = balancer.state().groups.find((g) => g.name === 'blue');
 */
export interface GroupState {
  name: string;
  weight: number;
  targets: number;
  healthy: number;
  /** Fewer than `panicThreshold`% healthy: requests go to every target of the group. */
  panic: boolean;
}

/**
 * What the admin API and `clones status` show.
 *
 * @example
 *   const { inFlight, groups } = balancer.state();
 */
export interface BalancerState {
  algorithm: string;
  /** The version guard: releases that may get new requests, or null when any may. */
  releases: string[] | null;
  /** Group stickiness as it applies now (a deploy may have set its own duration). */
  groupStickiness: { enabled: boolean; cookie: string; duration: number };
  inFlight: number;
  retriesInFlight: number;
  groups: GroupState[];
  targets: TargetState[];
}

/**
 * How long `drain` and `removeTarget` wait.
 *
 * @example
 *   await balancer.drain('c1', { deadline: 5000 });
 */
export interface DrainOptions {
  /** Milliseconds to wait for in-flight requests before cutting them; default `drain.deadline`. */
  deadline?: number;
}

/**
 * A running L7 load balancer, whichever engine runs it. Create it with `createBalancer`, then `listen`. Kept
 * apart from the engines so that the admin API and the engines all depend on it, and not on each other.
 *
 * @example
 *   const lb: Balancer = createBalancer({ targets: [{ id: 'c1', url: 'http://127.0.0.1:3001' }] });
 *   await lb.listen(8080, '127.0.0.1');
 */
export interface Balancer {
  readonly options: ResolvedOptions;
  /** Starts the proxy (and the admin API when `admin.port` is set); resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** The admin API's address once listening, else undefined. */
  adminAddress(): AddressInfo | undefined;
  /** The HTTP-to-HTTPS redirect listener's address (`redirect.port`), else undefined. */
  redirectAddress(): AddressInfo | undefined;
  /**
   * Reads the TLS files again; new connections get the new certificates, open ones keep theirs. Rejects with
   * a `CLONES_TLS_*` error (and keeps the old certificates) when a file is bad, `CLONES_TLS_OFF` without TLS.
   */
  reloadTls(): Promise<CertificateInfo[]>;
  /** Stops accepting, lets in-flight requests finish (up to `drain.deadline`), then closes everything. */
  close(): Promise<void>;
  addTarget(spec: TargetSpec): TargetState;
  /** Drains the target, then forgets it. */
  removeTarget(id: string, options?: DrainOptions): Promise<void>;
  /** No new requests for the target; resolves when its in-flight requests are done or the deadline passed. */
  drain(id: string, options?: DrainOptions): Promise<void>;
  /** Sets weights (0-1000) of named groups; a group at 0 gets no new clients. */
  setGroupWeights(weights: Record<string, number>): void;
  /**
   * The version guard: only targets of these releases get new requests (`undefined` lifts the guard).
   * In-flight requests to other targets finish; drain and remove those targets to stop them for good.
   */
  setReleases(releases: readonly string[] | undefined): void;
  /**
   * How long a client keeps the group it was given (1 s to 7 days, ms), from now on; `undefined` goes back
   * to the `groupStickiness.duration` option. A deploy sets it for its canary or blue-green phase.
   */
  setGroupStickiness(duration: number | undefined): void;
  /** Runs one active health check on a target now. */
  checkNow(id: string): Promise<boolean>;
  state(): BalancerState;
  /**
   * One target's state, as `state().targets` has it, or undefined when there is no such target: the cheap
   * read for a caller that watches one target (a supervisor waiting for its clone to turn healthy).
   */
  target(id: string): TargetState | undefined;
  /** Prometheus text exposition of the balancer's metrics. */
  metrics(): string;
  /**
   * Resolves when every change made so far is live. The built-in engine applies changes at once (no method);
   * the haproxy engine applies them through its runtime API or a reload, in order.
   */
  settled?(): Promise<void>;
}
