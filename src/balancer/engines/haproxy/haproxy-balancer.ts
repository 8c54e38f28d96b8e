import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  badTargetSpec,
  duplicateTarget,
  haproxyFailed,
  invalidOption,
  tlsOff,
  unknownTarget,
} from '../../../errors.ts';
import { createAdminServer } from '../../admin-server.ts';
import type { Balancer, BalancerState, DrainOptions, GroupState } from '../../balancer.ts';
import { isStickyDuration, type ResolvedOptions } from '../../options.ts';
import { parseTargetSpec } from '../../target.ts';
import { type CertificateInfo, loadTlsMaterial } from '../../tls-material.ts';
import {
  backendOf,
  haproxyFiles,
  haproxyWeight,
  renderHaproxyConfig,
  type ServerLine,
} from './haproxy-config.ts';
import { HaproxyProcess } from './haproxy-process.ts';
import { parseStat, runtimeChange, runtimeCommand } from './runtime-api.ts';

type Health = 'unknown' | 'healthy' | 'unhealthy';

/** One target as the engine models it; HAProxy's view is read back into `health` and `inFlight`. */
interface Entry {
  id: string;
  url: string;
  host: string;
  port: number;
  group: string;
  release: string;
  weight: number;
  /** Its first health checks passed (F6: HAProxy counts a new server UP before checking it). */
  admitted: boolean;
  draining: boolean;
  health: Health;
  inFlight: number;
  /** The admin state HAProxy was last told: 'ready' or 'maint'. */
  applied: 'ready' | 'maint' | undefined;
}

const JSON_ERROR = (status: number, reason: string, code: string, message: string) => {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncache-control: no-cache\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
};

/**
 * The balancer contract on HAProxy: the same options, methods and admin API as the built-in engine, with
 * HAProxy doing the proxying. The engine keeps the model (targets, groups, weights, guard) and makes HAProxy
 * match it: topology (servers, groups) through a generated haproxy.cfg and a seamless reload; everything
 * else (admit, drain, guard, group weights, stickiness duration) through the runtime API on the stats socket,
 * with no reload. Changes are applied in order; `settled()` resolves when every change made so far is live.
 * If haproxy exits, it is started again from the model.
 *
 * @example
 *   const lb = createBalancer({ engine: 'haproxy', targets: [{ id: 'c1', url: 'http://127.0.0.1:3001' }] });
 *   await lb.listen(8080);
 *   lb.addTarget({ id: 'c2', url: 'http://127.0.0.1:3002' });
 *   await lb.settled?.();
 */
export function createHaproxyBalancer(options: ResolvedOptions): Balancer {
  const logger = options.logger.child({ engine: 'haproxy' });
  const entries = new Map<string, Entry>();
  const groupWeights = new Map<string, number>(Object.entries(options.groups));
  let allowed: ReadonlySet<string> | undefined;
  let groupDuration = options.groupStickiness.duration;
  const drains = new Map<string, Promise<void>>();
  let queue: Promise<unknown> = Promise.resolve();
  let dir = '';
  let ownDir = false;
  let files = haproxyFiles('/nonexistent');
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

  const add = (spec: Parameters<Balancer['addTarget']>[0]): Entry => {
    const parsed = parseTargetSpec(spec);
    if (entries.has(parsed.id)) throw duplicateTarget(parsed.id);
    if (!groupWeights.has(parsed.group))
      groupWeights.set(parsed.group, groupWeights.size === 0 ? options.firstGroupWeight : 0);
    const entry: Entry = {
      ...parsed,
      admitted: !options.healthCheck.enabled,
      draining: false,
      health: options.healthCheck.enabled ? 'unknown' : 'healthy',
      inFlight: 0,
      applied: undefined,
    };
    entries.set(entry.id, entry);
    return entry;
  };
  // Targets given at start serve at once, as the built-in engine's panic mode lets them: HAProxy's own checks
  // take out the ones that fail. Targets added later wait for their checks (F6).
  for (const spec of options.targets) add(spec).admitted = true;

  const wanted = (e: Entry): 'ready' | 'maint' =>
    e.admitted && !e.draining && (allowed === undefined || allowed.has(e.release)) ? 'ready' : 'maint';

  /** Runs `job` after every change queued before it; a failed job is logged and does not stop the queue. */
  const enqueue = <T>(job: () => Promise<T>): Promise<T> => {
    const run = queue.then(job);
    queue = run.catch((err) => logger.error({ err }, 'haproxy change failed'));
    return run;
  };

  const mapsText = () => {
    const groups = [...groupWeights].map(([name, weight]) => `${name} ${weight}`);
    return `${[...groups, `@duration ${Math.floor(groupDuration / 1000)}`].join('\n')}\n`;
  };

  const writeFiles = async (): Promise<void> => {
    configGroups = [...groupWeights.keys()];
    const servers: ServerLine[] = [...entries.values()].map((e) => ({
      id: e.id,
      host: e.host,
      port: e.port,
      group: e.group,
      weight: haproxyWeight(e.weight),
      disabled: wanted(e) === 'maint',
    }));
    writeFileSync(files.groups, mapsText(), { mode: 0o600 });
    writeFileSync(
      files.releases,
      `${[...entries.values()].map((e) => `${e.id} ${e.release}`).join('\n')}\n`,
      { mode: 0o600 },
    );
    const config = renderHaproxyConfig({
      options,
      dir,
      listen: listenAt!,
      admin,
      groups: configGroups,
      servers,
      certDir: options.tls === undefined ? undefined : join(dir, 'certs'),
      secret,
      redirectPort,
    });
    writeFileSync(files.next, config, { mode: 0o600 });
    await proc!.check(files.next);
    renameSync(files.next, files.config);
    for (const e of entries.values()) e.applied = wanted(e);
  };

  /** Keeps HAProxy's view of each surviving server (health, weight, drain) across the reload, and nothing else (F7). */
  const saveServerState = async (): Promise<void> => {
    const text = await runtimeCommand(files.stats, 'show servers state');
    const lines = text.split('\n');
    const kept = lines.filter((line, i) => {
      if (i < 2 || line.trim() === '' || line.startsWith('#')) return i < 2 && line.trim() !== '';
      const cols = line.split(' ');
      const e = entries.get(cols[3] ?? '');
      return (
        e !== undefined && backendOf(e.group) === cols[1] && cols[4] === e.host && cols[18] === String(e.port)
      );
    });
    writeFileSync(files.state, `${kept.join('\n')}\n`, { mode: 0o600 });
  };

  const reload = async (): Promise<void> => {
    if (proc === undefined || closed) return;
    await writeFiles();
    await saveServerState();
    await proc.reload();
    await poll();
  };

  const setState = async (e: Entry): Promise<void> => {
    const want = wanted(e);
    if (e.applied === want || !entries.has(e.id) || proc === undefined) return;
    await runtimeChange(files.stats, `set server ${backendOf(e.group)}/${e.id} state ${want}`);
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

  const probe = (e: Entry): Promise<boolean> =>
    new Promise((resolve) => {
      const req = request(
        {
          host: e.host,
          port: e.port,
          path: options.healthCheck.path,
          agent: false,
          timeout: options.healthCheck.timeout,
        },
        (res) => {
          res.resume();
          resolve(options.healthCheck.matcher(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });

  /** Reads health and in-flight requests back from `show stat`. */
  const poll = async (): Promise<void> => {
    if (proc?.pid === undefined) return;
    const rows = parseStat(await runtimeCommand(files.stats, 'show stat', 3000));
    for (const row of rows) {
      const e = entries.get(row.svname ?? '');
      if (e === undefined || backendOf(e.group) !== row.pxname) continue;
      e.inFlight = Number(row.scur ?? 0);
      const status = row.status ?? '';
      if (status.startsWith('UP') || status === 'no check' || status === 'DRAIN') e.health = 'healthy';
      else if (status.startsWith('DOWN')) e.health = 'unhealthy';
    }
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
        await runtimeChange(files.stats, `shutdown sessions server ${backendOf(e.group)}/${id}`).catch(
          () => {},
        );
      }
    });
    drains.set(id, done);
    return done;
  };

  const freePort = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const server = createNetServer();
      server.once('error', reject);
      server.listen(0, host, () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });

  const writeCertificates = async (): Promise<CertificateInfo[]> => {
    const material = await loadTlsMaterial(options.tls!, logger);
    const certDir = join(dir, 'certs');
    mkdirSync(certDir, { recursive: true, mode: 0o700 });
    const pem = `${String(material.defaultOptions.cert).trim()}\n${String(material.defaultOptions.key).trim()}\n`;
    writeFileSync(join(certDir, 'default.pem'), pem, { mode: 0o600 });
    return material.certificates;
  };

  const balancer: Balancer & { settled(): Promise<void> } = {
    options,
    async listen(port = 0, host = '127.0.0.1') {
      dir = options.engineDir ?? mkdtempSync(join(tmpdir(), 'clones-haproxy-'));
      ownDir = options.engineDir === undefined;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
      files = haproxyFiles(dir);
      writeFileSync(
        join(dir, 'no-target.http'),
        JSON_ERROR(503, 'Service Unavailable', 'CLONES_BALANCER_NO_TARGET', 'no clone can take this request'),
      );
      writeFileSync(
        join(dir, 'upstream.http'),
        JSON_ERROR(
          502,
          'Bad Gateway',
          'CLONES_BALANCER_UPSTREAM_ERROR',
          'the clone failed and the request could not be retried',
        ),
      );
      writeFileSync(
        join(dir, 'timeout.http'),
        JSON_ERROR(
          504,
          'Gateway Timeout',
          'CLONES_BALANCER_UPSTREAM_TIMEOUT',
          'the clone did not answer in time',
        ),
      );
      writeFileSync(files.state, '');
      if (options.tls !== undefined) await writeCertificates();
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
      proc = new HaproxyProcess(dir, logger, (code, signal) => {
        void restart(`haproxy exited (${signal ?? code})`);
      });
      await writeFiles();
      await proc.start();
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
        const certificates = await writeCertificates();
        const path = join(dir, 'certs', 'default.pem');
        const pem = (await import('node:fs')).readFileSync(path, 'utf8');
        await runtimeChange(files.stats, `set ssl cert ${path} <<\n${pem}\n`);
        await runtimeChange(files.stats, `commit ssl cert ${path}`);
        return certificates;
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      if (poller) clearInterval(poller);
      await queue;
      if (proc?.pid !== undefined) {
        // Stop accepting, let what is in flight finish (up to drain.deadline), then stop haproxy at once:
        // idle keep-alive clients are not worth waiting for.
        await runtimeChange(files.stats, 'disable frontend clones_web').catch(() => {});
        const deadline = Date.now() + options.drain.deadline;
        while (Date.now() < deadline) {
          await poll().catch(() => {});
          if ([...entries.values()].every((e) => e.inFlight === 0)) break;
          await sleep(50);
        }
      }
      await proc?.stop(0);
      if (adminServer) {
        adminServer.close();
        adminServer.closeAllConnections();
      }
      if (ownDir && dir !== '') rmSync(dir, { recursive: true, force: true });
    },
    addTarget(spec) {
      const e = add(spec);
      logger.info({ target: e.id, url: e.url, group: e.group, release: e.release }, 'target added');
      if (proc !== undefined) {
        enqueue(reload).then(
          () => (e.admitted ? undefined : admit(e)),
          () => {},
        );
      }
      return toJSON(e);
    },
    async removeTarget(id, drainOptions) {
      const e = entries.get(id);
      if (e === undefined) throw unknownTarget(id);
      await drain(id, drainOptions);
      entries.delete(id);
      drains.delete(id);
      let used = false;
      for (const t of entries.values()) if (t.group === e.group) used = true;
      if (!used && !(e.group in options.groups)) groupWeights.delete(e.group);
      await enqueue(reload);
      logger.info({ target: id }, 'target removed');
    },
    drain,
    setGroupWeights(weights) {
      for (const [name, weight] of Object.entries(weights)) {
        if (!Number.isInteger(weight) || weight < 0 || weight > 1000)
          throw badTargetSpec(
            `groups.${name}`,
            `weight must be a whole number 0-1000; got ${String(weight)}`,
          );
      }
      const before = [...groupWeights.keys()].join(',');
      for (const [name, weight] of Object.entries(weights)) groupWeights.set(name, weight);
      logger.info({ weights }, 'group weights set');
      if (proc === undefined) return;
      if ([...groupWeights.keys()].join(',') !== before) {
        enqueue(reload).catch(() => {});
        return;
      }
      // A canary step: the map changes in the running worker (and on disk, for the next reload), no reload.
      enqueue(async () => {
        writeFileSync(files.groups, mapsText(), { mode: 0o600 });
        for (const [name, weight] of Object.entries(weights))
          await runtimeChange(files.stats, `set map ${files.groups} ${name} ${weight}`);
      }).catch(() => {});
    },
    setReleases(releases) {
      allowed = releases === undefined ? undefined : new Set(releases);
      logger.info({ releases }, 'release guard set');
      if (proc !== undefined) applyAll().catch(() => {});
    },
    setGroupStickiness(duration) {
      if (duration !== undefined && !isStickyDuration(duration))
        throw invalidOption('groupStickiness.duration', `must be 1 s to 7 days in ms; got ${duration}`);
      groupDuration = duration ?? options.groupStickiness.duration;
      if (proc === undefined) return;
      enqueue(async () => {
        writeFileSync(files.groups, mapsText(), { mode: 0o600 });
        await runtimeChange(
          files.stats,
          `set map ${files.groups} @duration ${Math.floor(groupDuration / 1000)}`,
        );
      }).catch(() => {});
    },
    checkNow(id) {
      const e = entries.get(id);
      if (e === undefined) return Promise.reject(unknownTarget(id));
      return probe(e);
    },
    state(): BalancerState {
      const groups: GroupState[] = [];
      for (const [name, weight] of groupWeights) {
        let targets = 0;
        let healthy = 0;
        for (const e of entries.values()) {
          if (e.group !== name || e.draining) continue;
          if (allowed !== undefined && !allowed.has(e.release)) continue;
          targets++;
          if (e.admitted && e.health === 'healthy') healthy++;
        }
        groups.push({ name, weight, targets, healthy, panic: false });
      }
      let inFlight = 0;
      for (const e of entries.values()) inFlight += e.inFlight;
      return {
        algorithm: options.algorithm,
        releases: allowed === undefined ? null : [...allowed],
        groupStickiness: {
          enabled: options.groupStickiness.enabled,
          cookie: options.groupStickiness.cookie,
          duration: groupDuration,
        },
        inFlight,
        retriesInFlight: 0,
        groups,
        targets: [...entries.values()].map(toJSON),
        engine: { name: 'haproxy', pid: proc?.pid ?? null, restarts, dir },
      } as BalancerState;
    },
    metrics() {
      // HAProxy's Prometheus exporter answers on a unix socket; the text is refreshed in the background, so
      // this is at most a second old (the admin listener's /metrics is served by HAProxy itself, live).
      if (Date.now() - metricsAt > 1000 && proc !== undefined && !closed) {
        metricsAt = Date.now();
        scrape(files.promex).then(
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

  function toJSON(e: Entry): Record<string, unknown> {
    return {
      id: e.id,
      url: e.url,
      group: e.group,
      release: e.release,
      weight: e.weight,
      health: e.admitted ? e.health : e.health === 'unhealthy' ? 'unhealthy' : 'unknown',
      ejected: false,
      ejectedUntil: null,
      draining: e.draining,
      inFlight: e.inFlight,
      websockets: 0,
    };
  }
}

/** GET /metrics from HAProxy's Prometheus exporter on its unix socket. */
function scrape(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(haproxyFailed('metrics', 'no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}
