import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BalancerOptions } from '../balancer/index.ts';
import { deployLocked } from '../errors.ts';
import { logger as rootLogger } from '../logger.ts';
import { APP_CONFIG } from './app-env.ts';
import { createDashboard } from './dashboard/dashboard.ts';
import { isAlive, readLock } from './deploy-lock.ts';
import { appendHistory, type DesiredState, DesiredStateFile, writeJsonAtomic } from './desired-state.ts';
import { Fleet } from './fleet.ts';
import { createFleetApi } from './fleet-api.ts';
import type { RuntimeInfo } from './fleet-client.ts';
import { fleetDefaults } from './fleet-defaults.ts';
import type { FleetEvent } from './fleet-event.ts';
import { BALANCER_LOG, type FleetPaths, fleetPaths } from './fleet-paths.ts';
import { appHealthPath } from './health-path.ts';
import { assertSharedStore, type HostsConfig, hostCountsOf, hostsConfig } from './host-config.ts';
import { savedToken, setupHosts } from './host-setup.ts';
import { buildRelease } from './release.ts';
import { SshTransport } from './ssh-transport.ts';
import type { SupervisorTimings } from './supervisor.ts';

export interface StartFleetOptions {
  appDir: string;
  /** The fleet's home, default `./.clones`. */
  home?: string;
  clones?: number;
  port?: number;
  host?: string;
  /** Environment for the clones; default `process.env`. SESSION_STORE and SESSION_SECRET are filled in. */
  env?: NodeJS.ProcessEnv;
  /** Variables the release declares on top of the app's `clones.json` env (`--env`); part of its digest. */
  releaseEnv?: Record<string, string>;
  balancer?: BalancerOptions;
  /** `--access-log`: the balancer writes an access log to `logs/balancer-access.log` (`clones logs balancer`). */
  accessLog?: boolean;
  supervisor?: Partial<SupervisorTimings>;
  /** What a clone answers 200 on when ready (`--health-path`); else clones.json `healthPath`; else `/up`. */
  healthPath?: string;
  logger?: Logger;
  onEvent?: (event: FleetEvent) => void;
  /** `--host user@address[:port]` flags; else the app's clones.json `hosts`; none: clones run here. */
  hosts?: string[];
  /** Accept (and record in known_hosts) the key of a host known_hosts does not name yet. */
  acceptNewHostKeys?: boolean;
  /** Port of the admin API and dashboard on 127.0.0.1; default 0 (any free port). */
  adminPort?: number;
}

export interface RunningFleet {
  fleet: Fleet;
  address: AddressInfo;
  runtime: RuntimeInfo;
  /** The dashboard's address with its one-time login token (see docs/dashboard.md). */
  dashboardUrl: string;
  /** Graceful stop: the balancer drains in-flight requests, then clones get SIGTERM (SIGKILL after the grace). */
  stop(): Promise<void>;
}

/**
 * `clones up` as a function: builds the release of `appDir`, starts the balancer, N clones of the release
 * and the admin API (loopback, bearer token in `.clones/admin-token`), and publishes `.clones/up.json`.
 *
 * @example
 *   const up = await startFleet({ appDir: 'examples/shop', clones: 3, port: 8080 });
 *   process.once('SIGINT', () => up.stop());
 */
export async function startFleet(options: StartFleetOptions): Promise<RunningFleet> {
  const paths = fleetPaths(options.home);
  const logger = options.logger ?? rootLogger.child({ part: 'fleet' });
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  // Private whatever it was before: it holds the admin token, the session secret and the sessions.
  chmodSync(paths.home, 0o700);
  if (existsSync(paths.runtime)) {
    const running = JSON.parse(readFileSync(paths.runtime, 'utf8')) as RuntimeInfo;
    if (isAlive(running.pid) && running.pid !== process.pid)
      throw deployLocked(`clones up is already running here (pid ${running.pid}, port ${running.port})`);
  }
  const stale = readLock(paths.lock);
  if (stale && !isAlive(stale.pid)) unlinkSync(paths.lock);

  const token = secretFile(paths.adminToken, () => randomBytes(32).toString('base64url'));
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const hostsConfigured = hostsConfig(options.appDir, { host: options.hosts, clones: options.clones });
  const healthPath = appHealthPath(options.appDir, options.healthPath);
  if (hostsConfigured) assertSharedStore(env.SESSION_STORE, hostsConfigured.hosts.length);
  env.SESSION_SECRET ??= secretFile(paths.secret, () => randomBytes(32).toString('base64'));
  // On hosts, an unset store is each clone's default: SQLite in the data directory of the host it runs on.
  if (!hostsConfigured) env.SESSION_STORE ??= `sqlite:${paths.sessions}`;

  const release = buildRelease(options.appDir, paths, { env: options.releaseEnv });
  options.onEvent?.({ type: 'release', release: release.digest, created: release.created, dir: release.dir });
  const desired = new DesiredStateFile(paths.desired);
  const previous = desired.read();
  const remote = hostsConfigured
    ? await prepareHosts(hostsConfigured, paths, env, options, logger)
    : undefined;
  const fleet = new Fleet({
    paths,
    desired,
    logger,
    env,
    balancer: {
      ...options.balancer,
      ...(options.accessLog ? { accessLog: join(paths.logs, `${BALANCER_LOG}.log`) } : {}),
      // The HAProxy engine's files in the home, not a temporary directory: after a kill -9 of this process,
      // the next start finds the haproxy it left serving (its pid file there) and stops it.
      ...(options.balancer?.engine === 'haproxy' ? { engineDir: join(paths.home, 'haproxy') } : {}),
      admin: { port: 0, token, ...options.balancer?.admin },
    },
    supervisor: options.supervisor,
    healthPath,
    ...(remote ? { hosts: remote.hosts } : {}),
  });
  const address = await fleet.listen(options.port ?? fleetDefaults.port, options.host ?? fleetDefaults.host);
  const dashboard = createDashboard(fleet, token, logger);
  const api: Server = createFleetApi(fleet, token, logger, dashboard.handle);
  const stop = async () => {
    dashboard.close();
    api.close();
    api.closeAllConnections();
    await fleet.close();
    await remote?.ssh.close();
    try {
      const info = JSON.parse(readFileSync(paths.runtime, 'utf8')) as RuntimeInfo;
      if (info.pid === process.pid) unlinkSync(paths.runtime);
    } catch {
      // Not ours, or already gone.
    }
  };
  try {
    const clones = options.clones ?? hostsConfigured?.hosts[0]?.clones ?? fleetDefaults.clones;
    const state: DesiredState = {
      release: release.digest,
      epoch: (previous?.epoch ?? 0) + 1,
      strategy: fleetDefaults.strategy,
      weights: {},
      clones,
      hostClones: hostCountsOf(hostsConfigured?.hosts ?? [], clones),
    };
    if (fleet.hosts) {
      // Clones the hosts already run (a `clones up` before this one): the reachable hosts are in service,
      // their clones of the previous or the new release go into the balancer, the rollout replaces the rest.
      await fleet.hosts.syncAll(() => false);
      for (const p of fleet.hosts.parts) p.inService = p.reachable;
      await fleet.hosts.syncAll((r) => r === state.release || r === previous?.release);
    }
    await fleet.converge(state, options.onEvent);
    fleet.watchHosts();
    appendHistory(paths.history, { ...state, at: new Date().toISOString(), action: 'up', outcome: 'ok' });
    await new Promise<void>((resolve, reject) => {
      api.once('error', reject);
      api.listen(options.adminPort ?? 0, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const runtime: RuntimeInfo = {
    pid: process.pid,
    host: address.address,
    port: address.port,
    api: (api.address() as AddressInfo).port,
    balancerAdmin: fleet.balancer.adminAddress()?.port ?? 0,
    release: release.digest,
    startedAt: new Date().toISOString(),
  };
  writeJsonAtomic(paths.runtime, runtime, 0o600);
  const dashboardUrl = `http://127.0.0.1:${runtime.api}${dashboard.loginPath()}`;
  return { fleet, address, runtime, dashboardUrl, stop };
}

/**
 * Across hosts: checks the one-host stores are not used, sets every host up (idempotent: checks, the clones
 * install, the agent) and names what each host's clones get in their environment: SESSION_STORE,
 * SESSION_SECRET, and the variables listed in CLONES_PASS_ENV (comma-separated).
 */
async function prepareHosts(
  config: HostsConfig,
  paths: FleetPaths,
  env: NodeJS.ProcessEnv,
  options: StartFleetOptions,
  logger: Logger,
) {
  const ssh = new SshTransport({
    knownHosts: config.ssh.knownHosts,
    parallel: config.ssh.parallel,
    acceptNewHostKeys: options.acceptNewHostKeys ?? false,
    logger,
  });
  const emit = (e: FleetEvent) => options.onEvent?.(e);
  const { results, tokens } = await setupHosts(ssh, config, paths, emit);
  for (const r of results) {
    if (r.ok) continue;
    // A host that cannot be set up now is caught up when it can be (its agent may be up from before).
    const saved = savedToken(paths, r.host.name);
    if (saved) tokens[r.host.name] = saved;
    emit({ type: 'host', host: r.host.name, step: 'setup', outcome: 'failed', detail: r.error.message });
  }
  const failed = results.map((r) => (r.ok ? undefined : r.error));
  if (failed.every((e) => e !== undefined)) {
    await ssh.close();
    throw failed[0]!;
  }
  const names = [
    'SESSION_STORE',
    'SESSION_SECRET',
    ...(env.CLONES_PASS_ENV ?? '').split(',').map((n) => n.trim()),
  ];
  const hostEnv: Record<string, string> = {};
  for (const name of names) if (name && env[name] !== undefined) hostEnv[name] = env[name]!;
  // `hosts add|remove` are written into clones.json, unless --host flags replaced its list.
  const configFile = options.hosts?.length ? undefined : join(options.appDir, APP_CONFIG);
  return { ssh, hosts: { config, ssh, paths, tokens, env: hostEnv, configFile } };
}

/** Reads a secret kept in a 0600 file, creating it once. */
function secretFile(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  return value;
}
