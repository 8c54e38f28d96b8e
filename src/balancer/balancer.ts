import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server as TlsServer } from 'node:tls';
import { badRequest, headersTooLarge, invalidOption, requestTimeout, tlsOff } from '../errors.ts';
import { createAdminServer } from './admin-server.ts';
import { createHaproxyBalancer } from './engines/haproxy/haproxy-balancer.ts';
import { HealthChecker } from './health-checker.ts';
import { Metrics } from './metrics.ts';
import {
  type BalancerOptions,
  isStickyDuration,
  type ResolvedOptions,
  resolveOptions,
  type TargetSpec,
} from './options.ts';
import { createPicker } from './pick/create-picker.ts';
import { writeRawError } from './error-response.ts';
import type { ProxyContext } from './proxy-context.ts';
import { createRequestHandler } from './proxy-request.ts';
import { closeUpgraded, createUpgradeHandler } from './proxy-upgrade.ts';
import { createRedirectServer } from './redirect-server.ts';
import { RetryBudget } from './retry-budget.ts';
import { Router } from './router.ts';
import { createSecureListener } from './secure-listener.ts';
import { TargetSet } from './target-set.ts';
import type { CertificateInfo } from './tls-material.ts';
import { TlsStore } from './tls-store.ts';

export interface GroupState {
  name: string;
  weight: number;
  targets: number;
  healthy: number;
  /** Fewer than `panicThreshold`% healthy: requests go to every target of the group. */
  panic: boolean;
}

/** What the admin API and `clones status` show. */
export interface BalancerState {
  algorithm: string;
  /** The version guard: releases that may get new requests, or null when any may. */
  releases: string[] | null;
  /** Group stickiness as it applies now (a deploy may have set its own duration). */
  groupStickiness: { enabled: boolean; cookie: string; duration: number };
  inFlight: number;
  retriesInFlight: number;
  groups: GroupState[];
  targets: Record<string, unknown>[];
}

export interface DrainOptions {
  /** Milliseconds to wait for in-flight requests before cutting them; default `drain.deadline`. */
  deadline?: number;
}

/**
 * A running L7 load balancer. Create it with `createBalancer`, then `listen`.
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
  addTarget(spec: TargetSpec): Record<string, unknown>;
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
  /** Prometheus text exposition of the balancer's metrics. */
  metrics(): string;
  /**
   * Resolves when every change made so far is live. The built-in engine applies changes at once (no method);
   * the haproxy engine applies them through its runtime API or a reload, in order.
   */
  settled?(): Promise<void>;
}

/**
 * Creates an L7 load balancer for clones. Options are validated here, once; see docs/balancer.md.
 *
 * @example
 *   const lb = createBalancer({ targets: [{ id: 'c1', url: 'http://127.0.0.1:3001' }] });
 *   await lb.listen(8080, '127.0.0.1');
 *   lb.addTarget({ id: 'c2', url: 'http://127.0.0.1:3002' });
 *   await lb.removeTarget('c1');
 */
export function createBalancer(input: BalancerOptions = {}): Balancer {
  const options = resolveOptions(input);
  if (options.engine === 'haproxy') return createHaproxyBalancer(options);
  const logger = options.logger;
  const metrics = new Metrics();
  const set = new TargetSet(options, metrics, logger);
  const router = new Router(options, set, createPicker(options.algorithm, options.random));
  const checker = new HealthChecker(options, set);
  const ctx: ProxyContext = {
    options,
    set,
    router,
    metrics,
    logger,
    budget: new RetryBudget(options.retries.budgetPercent, options.retries.minRetryConcurrency),
    active: 0,
  };
  const drains = new Map<string, Promise<void>>();
  let admin: Server | undefined;
  let closing: Promise<void> | undefined;

  const server = createServer({
    maxHeaderSize: options.server.maxHeaderSize,
    headersTimeout: options.server.headersTimeout,
    requestTimeout: options.server.requestTimeout,
    keepAliveTimeout: options.server.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(1000, Math.ceil(options.server.headersTimeout / 2)),
    // Host is checked by request hygiene, which answers in the same JSON as every other refusal.
    requireHostHeader: false,
    insecureHTTPParser: false,
  });
  // One past our own limit: request hygiene sees that a block was too long instead of a truncated one.
  server.maxHeadersCount = options.server.maxHeaderCount + 1;
  server.on('request', createRequestHandler(ctx));
  server.on('upgrade', createUpgradeHandler(ctx));
  server.on('clientError', (err: NodeJS.ErrnoException, duplex) => {
    const socket = duplex as Socket & { _httpMessage?: unknown };
    const code = err.code ?? 'unknown';
    if (code === 'ECONNRESET' || !socket.writable || socket._httpMessage) {
      socket.destroy();
      return;
    }
    metrics.rejected(code.toLowerCase());
    if (code === 'HPE_HEADER_OVERFLOW') writeRawError(socket, headersTooLarge(options.server.maxHeaderSize));
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT')
      writeRawError(socket, requestTimeout());
    else writeRawError(socket, badRequest(`unparseable request (${code})`));
  });
  // CONNECT (authority-form) is for forward proxies; without a listener Node would just drop the socket.
  server.on('connect', (_req, duplex: Socket) => {
    metrics.rejected('connect-method');
    duplex.on('error', () => duplex.destroy());
    writeRawError(duplex, badRequest('CONNECT is not supported', 501));
  });

  // HTTPS (tls.cert/key or tls.dir): a TLS + HTTP/2 listener in front of the handlers above, which then never
  // listens itself; `redirect.port` adds a plain listener that sends clients to HTTPS.
  const tls = options.tls === undefined ? undefined : new TlsStore(options.tls, logger);
  const front = tls === undefined ? server : createSecureListener(ctx, tls, server);
  let redirect: Server | undefined;

  for (const spec of options.targets) checker.start(set.add(spec));

  const drain = (id: string, drainOptions: DrainOptions = {}): Promise<void> => {
    const target = set.get(id);
    const running = drains.get(id);
    if (running) return running;
    target.draining = true;
    set.changed();
    logger.info({ target: id }, 'draining target');
    const deadline = Date.now() + (drainOptions.deadline ?? options.drain.deadline);
    const done = (async () => {
      while ((target.outstanding > 0 || target.upgraded.size > 0) && Date.now() < deadline) await sleep(20);
      for (const pair of [...target.upgraded]) closeUpgraded(pair);
      if (target.outstanding > 0)
        logger.warn({ target: id, inFlight: target.outstanding }, 'drain deadline passed');
    })();
    drains.set(id, done);
    return done;
  };

  return {
    options,
    async listen(port = 0, host = '127.0.0.1') {
      if (tls) await tls.attach(front as unknown as TlsServer);
      await listenOn(front, port, host);
      if (options.redirect.port !== undefined) {
        const httpsPort = (front.address() as AddressInfo).port;
        redirect = createRedirectServer(ctx, () => httpsPort, server);
        await listenOn(redirect, options.redirect.port, options.redirect.host ?? host);
      }
      if (options.admin.port !== undefined) {
        admin = createAdminServer(this, options);
        await new Promise<void>((resolve, reject) => {
          admin!.once('error', reject);
          admin!.listen(options.admin.port, options.admin.host, () => resolve());
        });
      }
      const address = front.address() as AddressInfo;
      logger.info(
        { address: address.address, port: address.port, tls: tls !== undefined },
        'balancer listening',
      );
      return address;
    },
    adminAddress() {
      return (admin?.address() as AddressInfo | null) ?? undefined;
    },
    redirectAddress() {
      return (redirect?.address() as AddressInfo | null) ?? undefined;
    },
    reloadTls() {
      return tls === undefined ? Promise.reject(tlsOff()) : tls.reload('requested');
    },
    close() {
      closing ??= (async () => {
        checker.stopAll();
        const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
        admin?.close();
        admin?.closeAllConnections();
        tls?.close();
        redirect?.close();
        redirect?.closeAllConnections();
        front.closeIdleConnections();
        const deadline = Date.now() + options.drain.deadline;
        while (ctx.active > 0 && Date.now() < deadline) await sleep(20);
        for (const target of set.targets.values()) {
          for (const pair of [...target.upgraded]) closeUpgraded(pair);
          target.pool.destroy();
        }
        front.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
    addTarget(spec) {
      const target = set.add(spec);
      checker.start(target);
      logger.info(
        { target: target.id, url: target.url, group: target.group, release: target.release },
        'target added',
      );
      return target.toJSON();
    },
    removeTarget(id, drainOptions) {
      const target = set.get(id);
      return drain(id, drainOptions).then(() => {
        checker.stop(target);
        set.delete(target);
        drains.delete(id);
        logger.info({ target: id }, 'target removed');
      });
    },
    drain,
    setGroupWeights(weights) {
      set.setGroupWeights(weights);
    },
    setReleases(releases) {
      set.allowedReleases = releases === undefined ? undefined : new Set(releases);
      logger.info({ releases }, 'release guard set');
    },
    setGroupStickiness(duration) {
      if (duration !== undefined && !isStickyDuration(duration))
        throw invalidOption('groupStickiness.duration', `must be 1 s to 7 days in ms; got ${duration}`);
      router.groupStickinessDuration = duration;
      logger.info({ duration: router.groupStickinessDuration }, 'group stickiness set');
    },
    checkNow(id) {
      return checker.check(set.get(id));
    },
    state() {
      const now = Date.now();
      const groups: GroupState[] = [];
      for (const [name, weight] of set.groupWeights) {
        let targets = 0;
        let healthy = 0;
        for (const t of set.targets.values()) {
          if (t.group !== name || t.draining) continue;
          if (set.allowedReleases !== undefined && !set.allowedReleases.has(t.release)) continue;
          targets++;
          if (t.health === 'healthy' && !t.isEjected(now)) healthy++;
        }
        const panic = options.panic && healthy * 100 < targets * options.panicThreshold;
        groups.push({ name, weight, targets, healthy, panic });
      }
      return {
        algorithm: options.algorithm,
        releases: set.allowedReleases === undefined ? null : [...set.allowedReleases],
        groupStickiness: {
          enabled: options.groupStickiness.enabled,
          cookie: options.groupStickiness.cookie,
          duration: router.groupStickinessDuration,
        },
        inFlight: ctx.active,
        retriesInFlight: ctx.budget.inFlight,
        groups,
        targets: [...set.targets.values()].map((t) => t.toJSON(now)),
      };
    },
    metrics() {
      return metrics.render(set.targets.values());
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
