import { randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import pino, { type Logger } from 'pino';
import { OptionIssues } from '../option-issues.ts';
import type { PickerName } from './pick/picker.ts';
import { STICKY_DURATION } from './sticky-duration.ts';
import { type ListenerOptions, listenerDefaults, resolveListenerOptions } from './tls-options.ts';

const SECOND = 1000;
const DAY = 86_400 * SECOND;

/**
 * Every balancer default, in one place; the CLI reuses these as its flag defaults.
 *
 * @example
 *   createBalancer({ healthCheck: { interval: balancerDefaults.healthCheck.interval * 2 } });
 */
export const balancerDefaults = Object.freeze({
  algorithm: 'least-outstanding' as PickerName,
  /** Adds `x-clones-clone` and `x-clones-release` to every proxied response. */
  cloneHeaders: true,
  /** The Via pseudonym (RFC 9110 §7.6.3); '' turns Via off. */
  via: 'clones',
  /** Peers whose X-Forwarded-* are kept and appended to; any other peer's are overwritten. */
  trustedProxies: ['127.0.0.0/8', '::1'] as readonly string[],
  healthCheck: Object.freeze({
    enabled: true,
    path: '/up',
    interval: 5 * SECOND,
    /** Each interval is moved by up to this fraction either way, so checks from many balancers spread out. */
    jitter: 0.2,
    timeout: 2 * SECOND,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    /** Interval while a target is between states (a check passed or failed against its current state). */
    transitionInterval: 1 * SECOND,
    /** Status codes that count as a pass: 'lo-hi' ranges and single codes, comma-separated. */
    matcher: '200-399',
  }),
  passive: Object.freeze({
    enabled: true,
    consecutiveFailures: 5,
    baseEjection: 30 * SECOND,
    maxEjection: 300 * SECOND,
    maxEjectedPercent: 50,
  }),
  /** Route to every target of a group when fewer than `panicThreshold`% of them are healthy. */
  panic: true,
  panicThreshold: 50,
  retries: Object.freeze({
    /** Extra attempts after the first, each on another target when there is one. */
    attempts: 2,
    budgetPercent: 20,
    minRetryConcurrency: 3,
    /** Request bodies up to this size are kept so that they can be replayed on a retry. */
    bufferBytes: 64 * 1024,
  }),
  upstream: Object.freeze({
    /** Time for the clone to send response headers (and the longest idle gap afterwards). */
    timeout: 30 * SECOND,
    /**
     * Idle upstream sockets are not reused after this, or 1 s before the clone's Keep-Alive timeout if sooner.
     * They close when next wanted, or at the latest when the connection's one timer next fires (within
     * `upstream.timeout` of their last request), so a quiet pool does not re-arm a timer per request.
     */
    idleTimeout: 4 * SECOND,
    maxSockets: 512,
    maxFreeSockets: 256,
    /**
     * Most connections to one target that may carry a request body still arriving from the client: slow
     * uploads cannot take every connection, the rest stay for other requests (at most `maxSockets`).
     */
    maxUploadSockets: 256 /* maxSockets / 2 unless set */,
    /** Longest wait for a free connection to the chosen clone, then 503 with Retry-After (HAProxy `timeout queue`). */
    queueTimeout: 10 * SECOND,
  }),
  sticky: Object.freeze({
    enabled: false,
    /** 'balancer': the balancer's signed cookie names the target; 'app': hash of an app cookie's value. */
    mode: 'balancer' as 'balancer' | 'app',
    cookie: 'clones_sticky',
    /** The app cookie to stick on in 'app' mode. */
    appCookie: '',
    duration: 1 * DAY,
  }),
  groupStickiness: Object.freeze({
    enabled: true,
    cookie: 'clones_group',
    duration: 1 * DAY,
  }),
  /** Weight of a group created implicitly by addTarget: the first group gets 100, later ones 0. */
  firstGroupWeight: 100,
  drain: Object.freeze({ deadline: 30 * SECOND }),
  /** Linear weight ramp for a target that has just become healthy; 0 is off. */
  slowStart: 0,
  server: Object.freeze({
    /** Longer than the 60 s idle timeout of AWS ALB and nginx, so a fronting LB never reuses a closed socket. */
    keepAliveTimeout: 65 * SECOND,
    headersTimeout: 10 * SECOND,
    requestTimeout: 300 * SECOND,
    maxHeaderSize: 16 * 1024,
    /** Most header lines in a request (HAProxy's tune.http.maxhdr is 101, Apache's LimitRequestFields 100). */
    maxHeaderCount: 100,
    /**
     * A request body must arrive within `bodyTimeout`, extended by one second per `bodyMinRate` bytes received
     * (Apache mod_reqtimeout's `body=20,MinRate=500`), and never pause longer than `bodyIdleTimeout`; else 408.
     * Time the balancer itself holds the body back (waiting for a clone) does not count.
     */
    bodyTimeout: 20 * SECOND,
    bodyMinRate: 500,
    bodyIdleTimeout: 30 * SECOND,
  }),
  admin: Object.freeze({ port: undefined as number | undefined, host: '127.0.0.1', token: '' }),
  /** 'builtin' (Node, nothing to install) or 'haproxy' (src/balancer/engines/haproxy, needs haproxy 2.6+). */
  engine: 'builtin' as 'builtin' | 'haproxy',
  /** Where the haproxy engine keeps its config, maps and sockets (mode 0700); default a temporary directory. */
  engineDir: undefined as string | undefined,
  /** A file for the access log (Combined Log Format, built-in engine); off by default. */
  accessLog: undefined as string | undefined,
  /** tls, http2, redirect, hsts: the HTTPS listener (src/balancer/tls-options.ts). */
  ...listenerDefaults,
});

type Widen<T> = T extends string ? string : T extends number ? number : T extends boolean ? boolean : T;
/** The defaults' shape with literal types widened (true -> boolean, 0.2 -> number). */
type Loose<T> = { readonly [K in keyof T]: T[K] extends object ? T[K] : Widen<T[K]> };
export type DeepPartial<T> = {
  -readonly [K in keyof T]?: T[K] extends readonly unknown[]
    ? T[K]
    : T[K] extends object
      ? DeepPartial<T[K]>
      : Widen<T[K]>;
};

/** What a target is registered with: through options, `addTarget` or the admin API. */
export interface TargetSpec {
  id: string;
  url: string;
  /** Target group, usually one per release (e.g. 'blue' and 'green'); default 'default'. */
  group?: string;
  release?: string;
  /** 1-1000, default 1. */
  weight?: number;
}

export interface BalancerOptions extends DeepPartial<Omit<typeof balancerDefaults, 'algorithm' | 'sticky'>> {
  algorithm?: PickerName;
  sticky?: DeepPartial<typeof balancerDefaults.sticky> & { secret?: string | Buffer };
  targets?: TargetSpec[];
  /** Initial group weights, 0-1000. */
  groups?: Record<string, number>;
  logger?: Logger;
  /** Source of randomness for power-of-two choices and jitter; inject a seeded one for reproducible runs. */
  random?: () => number;
}

/** Options after validation: every field set, frozen. */
export interface ResolvedOptions extends ListenerOptions {
  readonly algorithm: PickerName;
  readonly cloneHeaders: boolean;
  readonly via: string;
  readonly trustedProxies: BlockList;
  readonly healthCheck: Loose<Omit<typeof balancerDefaults.healthCheck, 'matcher'>> & {
    readonly matcher: (status: number) => boolean;
  };
  readonly passive: Loose<typeof balancerDefaults.passive>;
  readonly panic: boolean;
  readonly panicThreshold: number;
  readonly retries: Loose<typeof balancerDefaults.retries>;
  readonly upstream: Loose<typeof balancerDefaults.upstream>;
  readonly sticky: Readonly<{
    enabled: boolean;
    mode: 'balancer' | 'app';
    cookie: string;
    appCookie: string;
    duration: number;
  }>;
  readonly groupStickiness: Loose<typeof balancerDefaults.groupStickiness>;
  readonly secret: Buffer;
  readonly firstGroupWeight: number;
  readonly drain: Loose<typeof balancerDefaults.drain>;
  readonly slowStart: number;
  readonly server: Loose<typeof balancerDefaults.server>;
  readonly admin: Readonly<{ port: number | undefined; host: string; token: string }>;
  readonly engine: 'builtin' | 'haproxy';
  readonly engineDir: string | undefined;
  readonly accessLog: string | undefined;
  readonly targets: readonly TargetSpec[];
  readonly groups: Readonly<Record<string, number>>;
  readonly logger: Logger;
  readonly random: () => number;
}

const ALGORITHMS: readonly PickerName[] = ['least-outstanding', 'round-robin', 'power-of-two'];

/**
 * Validates options once, fills in defaults and freezes the result; every message names the option, and
 * every wrong option is reported at once. With `issues` (a config file's own problems, say) the problems are
 * added there and the caller throws them, with its own, all together.
 *
 * @example
 *   const options = resolveOptions({ algorithm: 'round-robin', sticky: { enabled: true } });
 */
export function resolveOptions(input: BalancerOptions = {}, issues?: OptionIssues): ResolvedOptions {
  const d = balancerDefaults;
  const v = issues ?? new OptionIssues();
  const hc = { ...d.healthCheck, ...input.healthCheck };
  const passive = { ...d.passive, ...input.passive };
  const retries = { ...d.retries, ...input.retries };
  const upstream = { ...d.upstream, ...input.upstream };
  // Half the connections by default, whatever maxSockets was set to.
  if (input.upstream?.maxUploadSockets === undefined && typeof upstream.maxSockets === 'number')
    upstream.maxUploadSockets = Math.max(1, Math.ceil(upstream.maxSockets / 2));
  const sticky = { ...d.sticky, ...input.sticky };
  const groupStickiness = { ...d.groupStickiness, ...input.groupStickiness };
  const server = { ...d.server, ...input.server };
  const admin = { ...d.admin, ...input.admin };
  const drain = { ...d.drain, ...input.drain };

  const algorithm = input.algorithm ?? d.algorithm;
  if (!ALGORITHMS.includes(algorithm)) {
    v.add('algorithm', `must be one of ${ALGORITHMS.join(', ')}; got ${String(algorithm)}`);
  }
  v.bool('cloneHeaders', input.cloneHeaders ?? d.cloneHeaders);
  v.bool('panic', input.panic ?? d.panic);
  const via = input.via ?? d.via;
  if (typeof via !== 'string' || /[^\w.-]/.test(via)) v.add('via', 'must be a token such as "clones"');

  v.bool('healthCheck.enabled', hc.enabled);
  if (typeof hc.path !== 'string' || !hc.path.startsWith('/')) v.add('healthCheck.path', 'must start with /');
  v.int('healthCheck.interval', hc.interval, 10, 3_600_000);
  v.num('healthCheck.jitter', hc.jitter, 0, 0.5);
  v.int('healthCheck.timeout', hc.timeout, 1, 60_000);
  v.int('healthCheck.healthyThreshold', hc.healthyThreshold, 1, 100);
  v.int('healthCheck.unhealthyThreshold', hc.unhealthyThreshold, 1, 100);
  v.int('healthCheck.transitionInterval', hc.transitionInterval, 10, 3_600_000);
  const matcher = parseMatcher(hc.matcher, v);

  v.bool('passive.enabled', passive.enabled);
  v.int('passive.consecutiveFailures', passive.consecutiveFailures, 1, 1000);
  v.int('passive.baseEjection', passive.baseEjection, 1, 86_400_000);
  v.int('passive.maxEjection', passive.maxEjection, passive.baseEjection, 86_400_000);
  v.int('passive.maxEjectedPercent', passive.maxEjectedPercent, 0, 100);
  v.int('panicThreshold', input.panicThreshold ?? d.panicThreshold, 0, 100);

  v.int('retries.attempts', retries.attempts, 0, 10);
  v.int('retries.budgetPercent', retries.budgetPercent, 0, 100);
  v.int('retries.minRetryConcurrency', retries.minRetryConcurrency, 0, 10_000);
  v.int('retries.bufferBytes', retries.bufferBytes, 0, 64 * 1024 * 1024);

  v.int('upstream.timeout', upstream.timeout, 1, 3_600_000);
  v.int('upstream.idleTimeout', upstream.idleTimeout, 1, 3_600_000);
  v.int('upstream.maxSockets', upstream.maxSockets, 1, 1_000_000);
  v.int('upstream.maxFreeSockets', upstream.maxFreeSockets, 0, 1_000_000);
  v.int('upstream.maxUploadSockets', upstream.maxUploadSockets, 1, upstream.maxSockets);
  v.int('upstream.queueTimeout', upstream.queueTimeout, 1, 3_600_000);

  v.bool('sticky.enabled', sticky.enabled);
  if (sticky.mode !== 'balancer' && sticky.mode !== 'app') {
    v.add('sticky.mode', `must be 'balancer' or 'app'; got ${String(sticky.mode)}`);
  }
  v.cookieName('sticky.cookie', sticky.cookie);
  if (sticky.enabled && sticky.mode === 'app') v.cookieName('sticky.appCookie', sticky.appCookie);
  v.int('sticky.duration', sticky.duration, STICKY_DURATION.min, STICKY_DURATION.max);
  v.bool('groupStickiness.enabled', groupStickiness.enabled);
  v.cookieName('groupStickiness.cookie', groupStickiness.cookie);
  v.int('groupStickiness.duration', groupStickiness.duration, STICKY_DURATION.min, STICKY_DURATION.max);
  let secret = randomBytes(32);
  const given: unknown = input.sticky?.secret;
  if (given !== undefined) {
    if (typeof given !== 'string' && !Buffer.isBuffer(given))
      v.add('sticky.secret', 'must be a string or a Buffer');
    else if (Buffer.byteLength(given) < 32) v.add('sticky.secret', 'must be at least 32 bytes');
    else secret = Buffer.from(given);
  }

  v.int('firstGroupWeight', input.firstGroupWeight ?? d.firstGroupWeight, 0, 1000);
  v.int('drain.deadline', drain.deadline, 0, 3_600_000);
  v.int('slowStart', input.slowStart ?? d.slowStart, 0, 3_600_000);
  v.int('server.keepAliveTimeout', server.keepAliveTimeout, 0, 3_600_000);
  v.int('server.headersTimeout', server.headersTimeout, 1, 3_600_000);
  v.int('server.requestTimeout', server.requestTimeout, 0, 86_400_000);
  v.int('server.maxHeaderSize', server.maxHeaderSize, 1024, 1024 * 1024);
  v.int('server.maxHeaderCount', server.maxHeaderCount, 8, 10_000);
  v.int('server.bodyTimeout', server.bodyTimeout, 1, 86_400_000);
  v.int('server.bodyMinRate', server.bodyMinRate, 0, 1_000_000_000);
  v.int('server.bodyIdleTimeout', server.bodyIdleTimeout, 1, 86_400_000);

  if (admin.port !== undefined) {
    v.int('admin.port', admin.port, 0, 65_535);
    if (typeof admin.token !== 'string' || admin.token.length < 16) {
      v.add('admin.token', 'the admin API needs a bearer token of at least 16 characters');
    }
  }
  if (typeof admin.host !== 'string' || isIP(admin.host) === 0) v.add('admin.host', 'must be an IP address');

  const engine = input.engine ?? d.engine;
  if (engine !== 'builtin' && engine !== 'haproxy')
    v.add('engine', `must be 'builtin' or 'haproxy'; got ${String(engine)}`);
  if (input.engineDir !== undefined && (typeof input.engineDir !== 'string' || input.engineDir === ''))
    v.add('engineDir', 'must be a directory path');
  if (input.accessLog !== undefined && (typeof input.accessLog !== 'string' || input.accessLog === ''))
    v.add('accessLog', 'must be a file path');

  const trustedProxies = new BlockList();
  const proxies = input.trustedProxies ?? d.trustedProxies;
  if (!Array.isArray(proxies)) v.add('trustedProxies', 'must be an array of IPs or CIDRs');
  else for (const entry of proxies) addTrusted(trustedProxies, entry, v);

  const groups: Record<string, number> = {};
  for (const [name, weight] of Object.entries(input.groups ?? {})) {
    v.int(`groups.${name}`, weight, 0, 1000);
    groups[name] = weight;
  }
  if (input.targets !== undefined && !Array.isArray(input.targets)) v.add('targets', 'must be an array');
  if (input.random !== undefined && typeof input.random !== 'function') v.add('random', 'must be a function');

  const listener = resolveListenerOptions(input, v);
  if (issues === undefined) v.throwIfAny();
  return Object.freeze({
    algorithm,
    cloneHeaders: input.cloneHeaders ?? d.cloneHeaders,
    via,
    trustedProxies,
    healthCheck: Object.freeze({ ...hc, matcher }),
    passive: Object.freeze(passive),
    panic: input.panic ?? d.panic,
    panicThreshold: input.panicThreshold ?? d.panicThreshold,
    retries: Object.freeze(retries),
    upstream: Object.freeze(upstream),
    sticky: Object.freeze({
      enabled: sticky.enabled,
      mode: sticky.mode as 'balancer' | 'app',
      cookie: sticky.cookie,
      appCookie: sticky.appCookie,
      duration: sticky.duration,
    }),
    groupStickiness: Object.freeze(groupStickiness),
    secret,
    firstGroupWeight: input.firstGroupWeight ?? d.firstGroupWeight,
    drain: Object.freeze(drain),
    slowStart: input.slowStart ?? d.slowStart,
    server: Object.freeze(server),
    admin: Object.freeze(admin),
    engine: engine as 'builtin' | 'haproxy',
    engineDir: input.engineDir,
    accessLog: input.accessLog,
    ...listener,
    targets: Object.freeze([...(input.targets ?? [])]),
    groups: Object.freeze(groups),
    logger: input.logger ?? pino({ name: 'clones-balancer' }),
    random: input.random ?? Math.random,
  });
}

function addTrusted(list: BlockList, entry: unknown, v: OptionIssues): void {
  if (typeof entry !== 'string') {
    v.add('trustedProxies', `entries must be strings; got ${String(entry)}`);
    return;
  }
  const [address = '', prefix] = entry.split('/');
  const family = isIP(address);
  if (family === 0) {
    v.add('trustedProxies', `"${entry}" is not an IP address or CIDR`);
    return;
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) {
    list.addAddress(address, type);
    return;
  }
  const bits = Number(prefix);
  if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128))
    v.add('trustedProxies', `"${entry}" has a bad prefix length`);
  else list.addSubnet(address, bits, type);
}

/** Parses '200-399' or '200,204,300-302' into a predicate. */
function parseMatcher(spec: unknown, v: OptionIssues): (status: number) => boolean {
  if (typeof spec !== 'string') {
    v.add('healthCheck.matcher', 'must be a string such as "200-399"');
    return () => false;
  }
  const ranges: [number, number][] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*$/.exec(part);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2] ?? m?.[1]);
    if (!m) v.add('healthCheck.matcher', `"${part}" is not a status code or a range like 200-399`);
    else if (lo < 100 || hi > 599 || lo > hi) v.add('healthCheck.matcher', `"${part}" is not a valid range`);
    else ranges.push([lo, hi]);
  }
  return (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi);
}
