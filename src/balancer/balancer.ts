import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server as TlsServer } from 'node:tls';
import { badRequest, headersTooLarge, portUnavailable, requestTimeout, tlsOff } from '../errors.ts';
import { AccessLog } from './access-log.ts';
import { createAdminServer } from './admin-server.ts';
import type { Balancer, DrainOptions } from './balancer-contract.ts';
import { createHaproxyBalancer } from './engines/haproxy/haproxy-balancer.ts';
import { writeRawError } from './error-response.ts';
import { HealthChecker } from './health-checker.ts';
import { Metrics } from './metrics.ts';
import { type BalancerOptions, resolveOptions } from './options.ts';
import { createPicker } from './pick/create-picker.ts';
import type { ProxyContext } from './proxy-context.ts';
import { createRequestHandler } from './proxy-request.ts';
import { closeUpgraded, createUpgradeHandler } from './proxy-upgrade.ts';
import { createRedirectServer } from './redirect-server.ts';
import { RetryBudget } from './retry-budget.ts';
import { Router } from './router.ts';
import { createSecureListener } from './secure-listener.ts';
import { checkGroupStickiness } from './sticky-duration.ts';
import { TargetSet } from './target-set.ts';
import { TlsStore } from './tls-store.ts';

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
    accessLog: options.accessLog === undefined ? undefined : new AccessLog(options.accessLog),
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
    target.drain();
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
        await ctx.accessLog?.close();
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
      checkGroupStickiness(duration);
      router.groupStickinessDuration = duration;
      logger.info({ duration: router.groupStickinessDuration }, 'group stickiness set');
    },
    checkNow(id) {
      return checker.check(set.get(id));
    },
    state() {
      const now = Date.now();
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
        groups: set.groupStates(now),
        targets: [...set.targets.values()].map((t) => t.toJSON(now)),
      };
    },
    target(id) {
      return set.targets.get(id)?.toJSON();
    },
    metrics() {
      return metrics.render(set.targets.values());
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? portUnavailable(host, port, err) : err);
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}
