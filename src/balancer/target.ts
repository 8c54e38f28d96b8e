import type { Socket } from 'node:net';
import { badTargetSpec } from '../errors.ts';
import type { TargetSpec } from './options.ts';
import { UpstreamPool, type UpstreamPoolOptions } from './upstream-pool.ts';
import type { WsFrameBoundary } from './ws-frame-boundary.ts';

export type Health = 'unknown' | 'healthy' | 'unhealthy';

/** A live pair of sockets of a proxied WebSocket (or other upgrade), closed together. */
export interface UpgradedPair {
  client: Socket;
  upstream: Socket;
  /** Set while draining closes it, so the close frame is flushed before the client socket goes. */
  closing?: boolean;
  /** Where the clone-to-client stream stands between frames, so a close frame can be inserted there. */
  frames: WsFrameBoundary;
}

/**
 * One clone as the balancer sees it: where it is, its group and release, and the state the router, the
 * health checks and the admin API read and change.
 *
 * @example
 *   const t = new Target({ id: 'c1', url: 'http://127.0.0.1:3001' }, poolOptions);
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
  /** The weight pickers use now: `baseWeight`, scaled down during slow start. */
  weight: number;
  /** Keep-alive connections to the clone. */
  readonly pool: UpstreamPool;
  readonly upgraded = new Set<UpgradedPair>();
  health: Health = 'unknown';
  /** When it last became healthy: the start of its slow-start ramp. */
  healthySince = 0;
  /** Consecutive active-check results against the current state, toward a transition. */
  passes = 0;
  fails = 0;
  outstanding = 0;
  draining = false;
  removed = false;
  /** Passive health: consecutive gateway failures, ejection end time and how many ejections in a row. */
  consecutiveFailures = 0;
  ejectedUntil = 0;
  ejections = 0;
  lastEjectionEnd = 0;
  requests = 0;
  /** Responses with a 5xx status from this target: the canary gate compares groups on it. */
  errors = 0;

  constructor(spec: TargetSpec, pool: UpstreamPoolOptions) {
    const parsed = parseTargetSpec(spec);
    this.id = parsed.id;
    this.url = parsed.url;
    this.host = parsed.host;
    this.port = parsed.port;
    this.group = parsed.group;
    this.release = parsed.release;
    this.baseWeight = parsed.weight;
    this.weight = parsed.weight;
    this.pool = new UpstreamPool(this.url, pool);
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  /** What the admin API shows. */
  toJSON(now = Date.now()): Record<string, unknown> {
    return {
      id: this.id,
      url: this.url,
      group: this.group,
      release: this.release,
      weight: this.baseWeight,
      health: this.health,
      ejected: this.isEjected(now),
      ejectedUntil: this.isEjected(now) ? new Date(this.ejectedUntil).toISOString() : null,
      draining: this.draining,
      inFlight: this.outstanding,
      websockets: this.upgraded.size,
      requests: this.requests,
      errors: this.errors,
    };
  }
}

const ID = /^[\w.:-]{1,128}$/;

/**
 * Checks a target spec and fills in its defaults; every engine registers targets through it.
 *
 * @example
 *   parseTargetSpec({ id: 'c1', url: 'http://127.0.0.1:3001' }); // { group: 'default', weight: 1, ... }
 */
export function parseTargetSpec(spec: TargetSpec) {
  if (spec === null || typeof spec !== 'object') throw badTargetSpec('target', 'must be an object');
  if (typeof spec.id !== 'string' || !ID.test(spec.id)) {
    throw badTargetSpec('id', 'must be 1-128 characters of letters, digits, _ . : -');
  }
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw badTargetSpec('url', `"${String(spec.url)}" is not a URL such as http://127.0.0.1:3001`);
  }
  if (url.protocol !== 'http:') throw badTargetSpec('url', 'only http:// targets are supported');
  if (url.pathname !== '/' || url.search || url.username)
    throw badTargetSpec('url', 'must be http://host:port only');
  const group = spec.group ?? 'default';
  if (typeof group !== 'string' || !ID.test(group))
    throw badTargetSpec('group', 'must be 1-128 of letters, digits, _ . : -');
  const release = spec.release ?? group;
  if (typeof release !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(release)) {
    throw badTargetSpec('release', 'must be 1-200 visible ASCII characters');
  }
  const weight = spec.weight ?? 1;
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000)
    throw badTargetSpec('weight', 'must be a whole number 1-1000');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { id: spec.id, url: url.origin, host, port: Number(url.port || 80), group, release, weight };
}
