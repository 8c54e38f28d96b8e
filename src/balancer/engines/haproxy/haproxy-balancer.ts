import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tlsOff, unknownTarget } from '../../../errors.ts';
import { freePort } from '../../../free-port.ts';
import { AccessLog } from '../../access-log.ts';
import { createAdminServer } from '../../admin-server.ts';
import type { Balancer, BalancerState, DrainOptions } from '../../balancer-contract.ts';
import { checkGroupWeights } from '../../check-group-weights.ts';
import { healthProbe } from '../../health-probe.ts';
import type { ResolvedOptions } from '../../options.ts';
import { checkGroupStickiness } from '../../sticky-duration.ts';
import { watchTlsFiles } from '../../tls-watch.ts';
import { writeErrorPages } from './error-pages.ts';
import { HaproxyCertificates } from './haproxy-certificates.ts';
import { haproxyFiles, renderHaproxyConfig } from './haproxy-config.ts';
import { type HaproxyEntry as Entry, HaproxyModel } from './haproxy-model.ts';
import { HaproxyProcess } from './haproxy-process.ts';
import { HaproxyRuntime } from './haproxy-runtime.ts';
import { scrapeMetrics } from './scrape-metrics.ts';

/**
 * The balancer contract on HAProxy: the same options, methods and admin API as the built-in engine, with
 * HAProxy doing the proxying. The engine keeps the model (targets, groups, weights, guard) and makes HAProxy
 * match it: topology (servers, groups) through a generated haproxy.cfg and a seamless reload; everything
 * else (admit, drain, guard, group weights, stickiness duration) through the runtime API on the stats socket
 * (haproxy-runtime.ts), with no reload. Changes are applied in order; `settled()` resolves when every change
 * made so far is live. If haproxy exits, it is started again from the model.
 *
 * @example
 *   const lb = createBalancer({ engine: 'haproxy', targets: [{ id: 'c1', url: 'http://127.0.0.1:3001' }] });
 *   await lb.listen(8080);
 *   lb.addTarget({ id: 'c2', url: 'http://127.0.0.1:3002' });
 *   await lb.settled?.();
 */
export function createHaproxyBalancer(options: ResolvedOptions): Balancer {
  const logger = options.logger.child({ engine: 'haproxy' });
  const model = new HaproxyModel(options);
  const { entries, groupWeights } = model;
  const drains = new Map<string, Promise<void>>();
  let queue: Promise<unknown> = Promise.resolve();
  let dir = '';
  let ownDir = false;
  let files = haproxyFiles('/nonexistent');
  let runtime = new HaproxyRuntime(files, model);
  const certificates = options.tls === undefined ? undefined : new HaproxyCertificates(options.tls, logger);
  const certDir = () => join(dir, 'certs');
  let proc: HaproxyProcess | undefined;
  let listenAt: { host: string; port: number } | undefined;
  let admin: { host: string; port: number; apiPort: number } | undefined;
  let adminServer: ReturnType<typeof createAdminServer> | undefined;
  let redirectPort: number | undefined;
  let poller: NodeJS.Timeout | undefined;
  let closed = false;
  let restarts = 0;
  let metricsText = '';
  let metricsAt = 0;
  let configGroups: string[] = [];
  const secret = options.secret.toString('base64');

  // Targets given at start serve at once, as the built-in engine's panic mode lets them: HAProxy's own checks
  // take out the ones that fail. Targets added later wait for their checks (F6).
  for (const spec of options.targets) model.add(spec).admitted = true;

  /** Runs `job` after every change queued before it; a failed job is logged and does not stop the queue. */
  const enqueue = <T>(job: () => Promise<T>): Promise<T> => {
    const run = queue.then(job);
    queue = run.catch((err) => logger.error({ err }, 'haproxy change failed'));
    return run;
  };

  const writeFiles = async (): Promise<void> => {
    configGroups = [...groupWeights.keys()];
    writeFileSync(files.groups, model.groupsMap(), { mode: 0o600 });
    writeFileSync(files.releases, model.releasesMap(), { mode: 0o600 });
    const config = renderHaproxyConfig({
      options,
      dir,
      listen: listenAt!,
      admin,
      groups: configGroups,
      servers: model.servers(),
      certDir: options.tls === undefined ? undefined : certDir(),
      secret,
      redirectPort,
    });
    writeFileSync(files.next, config, { mode: 0o600 });
    await proc!.check(files.next);
    renameSync(files.next, files.config);
    for (const e of entries.values()) e.applied = model.wanted(e);
  };

  const reload = async (): Promise<void> => {
    if (proc === undefined || closed) return;
    await writeFiles();
    await runtime.saveServerState();
    await proc.reload();
    await poll();
  };

  const setState = async (e: Entry): Promise<void> => {
    const want = model.wanted(e);
    if (e.applied === want || !entries.has(e.id) || proc === undefined) return;
    await runtime.setServerState(e, want);
    e.applied = want;
  };

  const applyAll = () =>
    enqueue(async () => {
      for (const e of entries.values()) await setState(e);
    });

  /** F6: a new server is only made ready once `healthyThreshold` checks in a row have passed. */
  const admit = async (e: Entry): Promise<void> => {
    const hc = options.healthCheck;
    let passes = 0;
    while (!closed && entries.get(e.id) === e && !e.admitted) {
      if (await probe(e)) passes++;
      else {
        passes = 0;
        e.health = 'unhealthy';
      }
      if (passes >= hc.healthyThreshold) {
        e.admitted = true;
        e.health = 'healthy';
        await enqueue(() => setState(e));
        return;
      }
      await sleep(hc.transitionInterval);
    }
  };

  const probe = (e: Entry): Promise<boolean> => healthProbe(e, options.healthCheck);

  /** Reads health and in-flight requests back from HAProxy. */
  const poll = async (): Promise<void> => {
    if (proc?.pid === undefined) return;
    await runtime.readStats();
  };

  const restart = async (why: string): Promise<void> => {
    if (closed || proc === undefined) return;
    restarts++;
    logger.error({ why, restarts }, 'haproxy is gone: starting it again from the current state');
    for (let attempt = 1; !closed; attempt++) {
      try {
        await writeFiles();
        await proc.start();
        logger.warn({ attempt }, 'haproxy restarted');
        return;
      } catch (err) {
        logger.error({ err, attempt }, 'haproxy restart failed');
        await sleep(Math.min(5000, 200 * attempt));
      }
    }
  };

  const drain = (id: string, drainOptions: DrainOptions = {}): Promise<void> => {
    const e = entries.get(id);
    if (e === undefined) return Promise.reject(unknownTarget(id));
    const running = drains.get(id);
    if (running) return running;
    e.draining = true;
    const deadline = Date.now() + (drainOptions.deadline ?? options.drain.deadline);
    const done = enqueue(() => setState(e)).then(async () => {
      // maint: no new request reaches it and a sticky client is re-pinned; what is in flight finishes.
      for (;;) {
        await poll().catch(() => {});
        if (e.inFlight === 0 || Date.now() >= deadline) break;
        await sleep(50);
      }
      if (e.inFlight > 0) {
        logger.warn({ target: id, inFlight: e.inFlight }, 'drain deadline passed');
        await runtime.shutdownSessions(e).catch(() => {});
      }
    });
    drains.set(id, done);
    return done;
  };

  let unwatchTls: (() => void) | undefined;
  let accessLog: AccessLog | undefined;

  const balancer: Balancer & { settled(): Promise<void> } = {
    options,
    async listen(port = 0, host = '127.0.0.1') {
      dir = options.engineDir ?? mkdtempSync(join(tmpdir(), 'clones-haproxy-'));
      ownDir = options.engineDir === undefined;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
      files = haproxyFiles(dir);
      runtime = new HaproxyRuntime(files, model);
      writeErrorPages(dir);
      writeFileSync(files.state, '');
      await certificates?.write(certDir());
      listenAt = { host, port: port === 0 ? await freePort(host) : port };
      if (options.redirect.port !== undefined) {
        const rhost = options.redirect.host ?? host;
        redirectPort = options.redirect.port === 0 ? await freePort(rhost) : options.redirect.port;
      }
      if (options.admin.port !== undefined) {
        adminServer = createAdminServer(balancer, options);
        await new Promise<void>((resolve, reject) => {
          adminServer!.once('error', reject);
          adminServer!.listen(0, '127.0.0.1', () => resolve());
        });
        const apiPort = (adminServer.address() as AddressInfo).port;
        const aport = options.admin.port === 0 ? await freePort(options.admin.host) : options.admin.port;
        admin = { host: options.admin.host, port: aport, apiPort };
        writeFileSync(files.adminAuth, `Bearer ${options.admin.token}\n`, { mode: 0o600 });
      }
      accessLog = options.accessLog === undefined ? undefined : new AccessLog(options.accessLog);
      proc = new HaproxyProcess(
        dir,
        logger,
        (code, signal) => {
          void restart(`haproxy exited (${signal ?? code})`);
        },
        accessLog && ((line) => accessLog?.raw(line)),
      );
      await writeFiles();
      await proc.start();
      if (options.tls?.watch)
        unwatchTls = watchTlsFiles(options.tls, logger, () => {
          balancer
            .reloadTls()
            .catch((err) =>
              logger.error({ err }, 'TLS reload failed; the previous certificates stay in use'),
            );
        });
      await poll();
      for (const e of entries.values()) if (!e.admitted) void admit(e);
      poller = setInterval(() => {
        poll().catch((err) => logger.warn({ err }, 'haproxy stats poll failed'));
      }, 500);
      poller.unref();
      logger.info(
        { address: host, port: listenAt.port, dir, tls: options.tls !== undefined },
        'balancer listening (haproxy)',
      );
      return { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: listenAt.port };
    },
    adminAddress() {
      return admin === undefined
        ? undefined
        : { address: admin.host, family: admin.host.includes(':') ? 'IPv6' : 'IPv4', port: admin.port };
    },
    redirectAddress() {
      const host = options.redirect.host ?? listenAt?.host ?? '127.0.0.1';
      return redirectPort === undefined
        ? undefined
        : { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: redirectPort };
    },
    async reloadTls() {
      if (options.tls === undefined) throw tlsOff();
      return enqueue(async () => {
        const written = await certificates!.write(certDir());
        if (!written.sameFiles) await reload();
        else for (const file of written.changed) await runtime.updateCertificate(file);
        logger.info(
          { certificates: written.certificates.map((c) => c.file), changed: written.changed.length },
          'TLS certificates loaded',
        );
        return written.certificates;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      unwatchTls?.();
      if (poller) clearInterval(poller);
      await queue;
      if (proc?.pid !== undefined) {
        // Stop accepting, let what is in flight finish (up to drain.deadline), then stop haproxy at once:
        // idle keep-alive clients are not worth waiting for.
        await runtime.disableFrontend().catch(() => {});
        const deadline = Date.now() + options.drain.deadline;
        while (Date.now() < deadline) {
          await poll().catch(() => {});
          if ([...entries.values()].every((e) => e.inFlight === 0)) break;
          await sleep(50);
        }
      }
      await proc?.stop(0);
      await accessLog?.close();
      if (adminServer) {
        adminServer.close();
        adminServer.closeAllConnections();
      }
      if (ownDir && dir !== '') rmSync(dir, { recursive: true, force: true });
    },
    addTarget(spec) {
      const e = model.add(spec);
      logger.info({ target: e.id, url: e.url, group: e.group, release: e.release }, 'target added');
      if (proc !== undefined) {
        enqueue(reload).then(
          () => (e.admitted ? undefined : admit(e)),
          () => {},
        );
      }
      return model.targetState(e);
    },
    async removeTarget(id, drainOptions) {
      const e = entries.get(id);
      if (e === undefined) throw unknownTarget(id);
      await drain(id, drainOptions);
      model.delete(e);
      drains.delete(id);
      await enqueue(reload);
      logger.info({ target: id }, 'target removed');
    },
    drain,
    setGroupWeights(weights) {
      checkGroupWeights(weights);
      const before = [...groupWeights.keys()].join(',');
      for (const [name, weight] of Object.entries(weights)) groupWeights.set(name, weight);
      logger.info({ weights }, 'group weights set');
      if (proc === undefined) return;
      if ([...groupWeights.keys()].join(',') !== before) {
        enqueue(reload).catch(() => {});
        return;
      }
      // A canary step: no reload.
      enqueue(() => runtime.setGroupWeights(weights)).catch(() => {});
    },
    setReleases(releases) {
      model.allowed = releases === undefined ? undefined : new Set(releases);
      logger.info({ releases }, 'release guard set');
      if (proc !== undefined) applyAll().catch(() => {});
    },
    setGroupStickiness(duration) {
      checkGroupStickiness(duration);
      model.groupDuration = duration ?? options.groupStickiness.duration;
      if (proc === undefined) return;
      enqueue(() => runtime.setGroupDuration()).catch(() => {});
    },
    checkNow(id) {
      const e = entries.get(id);
      if (e === undefined) return Promise.reject(unknownTarget(id));
      return probe(e);
    },
    state(): BalancerState {
      return {
        algorithm: options.algorithm,
        releases: model.allowed === undefined ? null : [...model.allowed],
        groupStickiness: {
          enabled: options.groupStickiness.enabled,
          cookie: options.groupStickiness.cookie,
          duration: model.groupDuration,
        },
        inFlight: model.inFlight(),
        retriesInFlight: 0,
        groups: model.groupStates(),
        targets: [...entries.values()].map((e) => model.targetState(e)),
        engine: { name: 'haproxy', pid: proc?.pid ?? null, restarts, dir },
      } as BalancerState;
    },
    target(id) {
      const e = entries.get(id);
      return e === undefined ? undefined : model.targetState(e);
    },
    metrics() {
      // HAProxy's Prometheus exporter answers on a unix socket; the text is refreshed in the background, so
      // this is at most a second old (the admin listener's /metrics is served by HAProxy itself, live).
      if (Date.now() - metricsAt > 1000 && proc !== undefined && !closed) {
        metricsAt = Date.now();
        scrapeMetrics(files.promex).then(
          (text) => {
            metricsText = text;
          },
          (err) => logger.warn({ err }, 'metrics scrape failed'),
        );
      }
      return metricsText;
    },
    settled() {
      return queue.then(() => undefined);
    },
  };
  return balancer;
}
