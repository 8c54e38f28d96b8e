import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Balancer, type BalancerOptions, createBalancer } from '../balancer/index.ts';
import { noDesiredState, noPreviousRelease, unknownClone, unknownHost } from '../errors.ts';
import { DeployControl, type DeployInProgress } from './deploy-control.ts';
import { acquireDeployLock } from './deploy-lock.ts';
import { type DeployContext, deployRelease } from './deploy-release.ts';
import type { DeployRequest } from './deploy-request.ts';
import {
  appendHistory,
  clonesOn,
  type DesiredState,
  type DesiredStateSource,
  previousRelease,
  readHistory,
} from './desired-state.ts';
import { EventHub } from './event-hub.ts';
import { FleetConverger } from './fleet-converger.ts';
import { fleetDefaults } from './fleet-defaults.ts';
import type { Emit } from './fleet-event.ts';
import { FleetHosts, type FleetHostsOptions } from './fleet-hosts.ts';
import { FleetLogs } from './fleet-logs.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { type FleetStatus, fleetStatus } from './fleet-status.ts';
import { checkHealthPath } from './health-path.ts';
import { hostCountsOf } from './host-config.ts';
import type { LogsQuery } from './log-stream.ts';
import { type ReleaseEntry, releaseList } from './release-list.ts';
import type { CloneDriver } from './rollout/rollout-context.ts';
import { Supervisor, type SupervisorOptions, supervisorDefaults } from './supervisor.ts';

export interface FleetOptions {
  paths: FleetPaths;
  desired: DesiredStateSource;
  logger: Logger;
  /** Environment of every clone (SESSION_STORE, SESSION_SECRET). */
  env: NodeJS.ProcessEnv;
  balancer?: BalancerOptions;
  supervisor?: Partial<Omit<SupervisorOptions, 'paths' | 'balancer' | 'env' | 'logger' | 'releaseFor'>>;
  keepReleases?: number;
  /**
   * The path every clone answers 200 on when ready (`--health-path`, clones.json `healthPath`): the
   * supervisors' readiness gate (on this machine and on every host) and the balancer's checks use it.
   * Default: `balancer.healthCheck.path` when given, else `/up`.
   */
  healthPath?: string;
  /** A fleet across hosts: clones run on the hosts (through their agents), not on this machine. */
  hosts?: Omit<
    FleetHostsOptions,
    'balancer' | 'emit' | 'logger' | 'drainTimeout' | 'readyTimeout' | 'healthPath'
  >;
}

/**
 * One host's fleet: the balancer, the supervised clones, and the desired-state record they converge to.
 * `deploy`, `rollback` and `scale` write a new record (higher epoch) and converge; a failed deploy writes
 * the previous release back and converges again (automatic rollback). The parts: the record and converging
 * to it (fleet-converger.ts), a deploy (deploy-release.ts), events (event-hub.ts), `clones status`
 * (fleet-status.ts) and `clones logs` (fleet-logs.ts); the hosts, when it spans hosts (fleet-hosts.ts).
 *
 * @example
 *   const fleet = new Fleet({ paths, desired: new DesiredStateFile(paths.desired), logger, env });
 *   await fleet.listen(8080, '127.0.0.1');
 *   await fleet.converge({ release, epoch: 1, strategy: 'rolling', weights: {}, clones: 3 });
 *   await fleet.deploy({ release: next, strategy: 'blue-green' }, console.log);
 */
export class Fleet {
  readonly paths: FleetPaths;
  readonly balancer: Balancer;
  readonly supervisor: Supervisor;
  /** The hosts and their agents, when the fleet spans hosts. */
  readonly hosts: FleetHosts | undefined;
  #poll: NodeJS.Timeout | undefined;
  readonly #logger: Logger;
  readonly #events = new EventHub();
  readonly #converger: FleetConverger;
  readonly #logs: FleetLogs;
  /** The operator's pause and abort of the deploy in progress. */
  readonly #control = new DeployControl();
  readonly #deploy: DeployContext;

  constructor(options: FleetOptions) {
    this.paths = options.paths;
    this.#logger = options.logger;
    const healthPath = checkHealthPath(
      'healthPath',
      options.healthPath ?? options.balancer?.healthCheck?.path ?? fleetDefaults.healthPath,
    );
    this.balancer = createBalancer({
      logger: options.logger,
      ...options.balancer,
      // The supervisor gates every clone on its health path before adding it: one passing check is enough.
      healthCheck: {
        healthyThreshold: 1,
        transitionInterval: 500,
        ...options.balancer?.healthCheck,
        path: healthPath,
      },
    });
    this.supervisor = new Supervisor({
      ...options.supervisor,
      healthPath,
      paths: options.paths,
      balancer: this.balancer,
      env: options.env,
      logger: options.logger,
      releaseFor: (clone) => this.#converger.releaseFor(clone),
      onEvent: (event) => this.#events.fanOut(event),
    });
    if (options.hosts) {
      const timings = { ...supervisorDefaults, ...options.supervisor };
      this.hosts = new FleetHosts({
        ...options.hosts,
        balancer: this.balancer,
        logger: options.logger,
        drainTimeout: timings.drainTimeout,
        readyTimeout: timings.readyTimeout,
        healthPath,
        emit: (event) => this.#events.fanOut(event),
      });
    }
    this.#converger = new FleetConverger({
      paths: options.paths,
      desired: options.desired,
      balancer: this.balancer,
      supervisor: this.supervisor,
      hosts: this.hosts,
      events: this.#events,
    });
    this.#logs = new FleetLogs(options.paths, this.supervisor, this.hosts);
    this.#deploy = {
      converger: this.#converger,
      balancer: this.balancer,
      hosts: this.hosts,
      paths: options.paths,
      control: this.#control,
      logger: options.logger,
      keepReleases: options.keepReleases ?? fleetDefaults.keepReleases,
    };
  }

  /**
   * Every event of the fleet, each once: clones changing state (crashes included), and the progress of
   * every deploy, rollback and scale whoever asked for it. What the dashboard and `clones up` show.
   *
   * @example
   *   const stop = fleet.watch((event) => console.log(event.type));
   */
  watch(listener: Emit): () => void {
    return this.#events.watch(listener);
  }

  /**
   * Across hosts: reads every agent each `ms` (a clone an agent restarted on a new port goes back into the
   * balancer) and catches up hosts that are not in service (joined late, or skipped while unreachable).
   */
  watchHosts(ms = 1000): void {
    const hosts = this.hosts;
    if (!hosts || this.#poll) return;
    const converger = this.#converger;
    let busy = false;
    this.#poll = setInterval(() => {
      if (busy) return;
      busy = true;
      const run = async () => {
        await hosts.syncAll(converger.allowed());
        if (hosts.parts.some((p) => !p.inService && p.reachable)) {
          await converger.serially(() => hosts.catchUp(converger.state, converger.allowed()));
          converger.reweigh();
        }
      };
      run()
        .catch((err) => this.#logger.warn({ err: (err as Error).message }, 'host poll failed'))
        .finally(() => {
          busy = false;
        });
    }, ms);
    this.#poll.unref();
  }

  get desired(): DesiredState | undefined {
    return this.#converger.state;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return this.balancer.listen(port, host);
  }

  /**
   * Makes the running clones match `state` (see FleetConverger.converge). Throws when a clone fails its gate.
   */
  converge(state: DesiredState, emit: Emit = () => {}, signal?: AbortSignal): Promise<void> {
    return this.#converger.converge(state, emit, signal);
  }

  /**
   * Rolls `release` out with its strategy. Exits only when every clone runs it (and the balancer refuses
   * every other release); on any failure converges back to the previous release and throws
   * CLONES_FLEET_DEPLOY_FAILED with the reason.
   */
  async deploy(
    request: DeployRequest,
    emit: Emit,
    signal?: AbortSignal,
    action: 'deploy' | 'rollback' = 'deploy',
  ): Promise<FleetStatus> {
    await deployRelease(this.#deploy, request, this.#events.tee(emit), signal, action);
    return this.status();
  }

  /** Holds the canary in progress at its step (`clones deploy --pause`); its breach checks go on. */
  pauseDeploy(): DeployInProgress {
    return this.#control.pause();
  }

  resumeDeploy(): DeployInProgress {
    return this.#control.resume();
  }

  /** Aborts the deploy in progress: it rolls back to the release before it (`clones deploy --abort`). */
  abortDeploy(): DeployInProgress {
    return this.#control.abort();
  }

  /**
   * Drains one clone and replaces it (`clones drain`): a new clone of the release it should run starts and
   * passes its gate first, so capacity stays; then the old one leaves the balancer, finishes its in-flight
   * requests and stops. For a clone that leaks or misbehaves; across hosts the new clone runs on the same host.
   */
  drainClone(id: string, emit: Emit): Promise<FleetStatus> {
    emit = this.#events.tee(emit);
    const converger = this.#converger;
    return converger.serially(async () => {
      if (!converger.state) throw noDesiredState();
      const clone = converger.all().find((c) => c.id === id);
      if (!clone || clone.state === 'stopped') throw unknownClone(id);
      const driver: CloneDriver = this.hosts
        ? this.hosts.parts.find((p) => p.list().some((c) => c.id === id))!
        : this.supervisor;
      const release = converger.releaseFor(clone);
      await driver.start(release);
      await driver.stop(id);
      converger.reweigh();
      emit({ type: 'done', release, clones: converger.all().length });
      return this.status();
    });
  }

  /** Rolls back to the release deployed before the current one (or to `release`). */
  rollback(emit: Emit, signal?: AbortSignal, release?: string): Promise<FleetStatus> {
    const current = this.#converger.state?.release ?? '';
    const target = release ?? previousRelease(readHistory(this.paths.history), current);
    if (!target) throw noPreviousRelease();
    return this.deploy({ release: target, strategy: 'rolling' }, emit, signal, 'rollback');
  }

  /**
   * Sets the number of clones (on every host), or with `host` on that host only; new ones boot from the
   * current desired release.
   */
  async scale(clones: number, emit: Emit, host?: string): Promise<FleetStatus> {
    emit = this.#events.tee(emit);
    const state = this.#converger.state;
    if (!state) throw noDesiredState();
    if (host !== undefined && !this.hosts?.parts.some((p) => p.host.name === host)) throw unknownHost(host);
    const unlock = acquireDeployLock(this.paths.lock, { action: 'scale', release: state.release });
    try {
      const next: DesiredState =
        host === undefined
          ? { ...state, epoch: state.epoch + 1, clones, hostClones: undefined }
          : {
              ...state,
              epoch: state.epoch + 1,
              hostClones: hostCountsOf(
                Object.entries({ ...state.hostClones, [host]: clones }).map(([name, n]) => ({
                  name,
                  clones: n,
                })),
                state.clones,
              ),
            };
      emit({
        type: 'scale',
        release: state.release,
        from: host === undefined ? state.clones : clonesOn(state, host),
        clones,
        ...(host === undefined ? {} : { host }),
      });
      await this.converge(next, emit);
      appendHistory(this.paths.history, {
        release: state.release,
        epoch: state.epoch + 1,
        at: new Date().toISOString(),
        action: 'scale',
        strategy: state.strategy,
        outcome: 'ok',
      });
      emit({ type: 'done', release: state.release, clones });
    } finally {
      this.#converger.resetRollout();
      unlock();
    }
    return this.status();
  }

  status(): FleetStatus {
    return fleetStatus({
      state: this.#converger.state,
      balancer: this.balancer,
      hosts: this.hosts,
      lock: this.paths.lock,
      deploy: this.#control.current,
      clones: () => this.#converger.all(),
    });
  }

  /** Releases on disk with what the history says about them, newest first. */
  releases(): ReleaseEntry[] {
    return releaseList(this.paths, this.#converger.state);
  }

  /** The last `lines` lines of the clones' logs (every host's), or of one clone; `since` leaves older out. */
  logs(clone: string | undefined, lines: number, since?: number): Promise<string> {
    return this.#logs.read(clone, lines, since);
  }

  /**
   * `clones logs -f`: the last lines, then every new line (`<clone> <line>`, `host:clone` across hosts)
   * until `signal` aborts; clones that start later are followed too.
   */
  followLogs(
    q: Omit<LogsQuery, 'follow'>,
    write: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return this.#logs.follow(q, write, signal);
  }

  /** Adds a host (set up over SSH); it serves once it has caught up with the desired release. */
  async addHost(flag: string, emit: Emit): Promise<FleetStatus> {
    const state = this.#converger.state;
    if (!this.hosts || !state) throw unknownHost(flag);
    const part = await this.hosts.setupAndAdd(flag, state.clones, emit);
    const deadline = Date.now() + 300_000;
    while (!part.inService && Date.now() < deadline) await sleep(250);
    emit({ type: 'done', release: this.#converger.state!.release });
    return this.status();
  }

  /** Takes a host out: its clones leave the balancer (drained), then stop. */
  async removeHost(name: string, emit: Emit): Promise<FleetStatus> {
    if (!this.hosts?.parts.some((p) => p.host.name === name)) throw unknownHost(name);
    await this.#converger.serially(() => this.hosts!.remove(name, emit));
    this.#converger.reweigh();
    emit({ type: 'host', host: name, step: 'remove', outcome: 'changed' });
    return this.status();
  }

  /** Graceful stop: the balancer stops taking requests and lets in-flight ones finish, then every clone stops. */
  async close(drainTimeout?: number): Promise<void> {
    if (this.#poll) clearInterval(this.#poll);
    await this.balancer.close();
    // Clones on hosts keep running (their agents own them): the next `clones up` takes them back.
    await this.supervisor.stopAll(drainTimeout ?? 0);
  }
}
