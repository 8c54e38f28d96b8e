import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Balancer, type BalancerOptions, createBalancer } from '../balancer/index.ts';
import {
  agentUnavailable,
  deployFailed,
  noDesiredState,
  noPreviousRelease,
  staleClones,
  unknownClone,
  unknownHost,
} from '../errors.ts';
import { type CloneInfo, groupOf } from './clone-info.ts';
import { DeployControl, type DeployInProgress } from './deploy-control.ts';
import { acquireDeployLock, readLock } from './deploy-lock.ts';
import {
  appendHistory,
  clonesOn,
  type DesiredState,
  type DesiredStateSource,
  previousRelease,
  readHistory,
  type Strategy,
} from './desired-state.ts';
import { convergedEvent, type Emit, type FleetEvent } from './fleet-event.ts';
import { FleetHosts, type FleetHostsOptions, type HostInfo } from './fleet-hosts.ts';
import { BALANCER_LOG, type FleetPaths } from './fleet-paths.ts';
import { checkHealthPath, DEFAULT_HEALTH_PATH } from './health-path.ts';
import type { HostClones } from './host-clones.ts';
import { followLogs, readLogLines } from './log-reader.ts';
import type { LogsQuery } from './log-stream.ts';
import { gcReleases, listReleases, readRelease } from './release.ts';
import { releaseToRestart } from './restart-release.ts';
import { acrossHosts, batchSize } from './rollout/across-hosts.ts';
import { type CanaryPlan, canarySteps, strategyFor } from './rollout/index.ts';
import type { CloneDriver } from './rollout/rollout-context.ts';
import { Supervisor, type SupervisorOptions, supervisorDefaults } from './supervisor.ts';
import { targetStates } from './target-state.ts';

/**
 * Fleet defaults, shared by `clones up`/`deploy` flags and the API.
 *
 * @example
 *   clones = flags.clones ?? fleetDefaults.clones;
 */
export const fleetDefaults = Object.freeze({
  clones: 3,
  port: 8080,
  host: '127.0.0.1',
  strategy: 'rolling' as Strategy,
  /** Releases kept on disk; the current, the previous and a pinned canary are kept whatever their age. */
  keepReleases: 5,
  /** Canary weights, in percent, one step after another; 100 promotes. */
  steps: [10, 50, 100] as readonly number[],
  /** How long each canary step is watched before the next. */
  stepWait: 30_000,
  canaryClones: 1,
  /** The canary fails when its 5xx rate exceeds the stable group's by more than this (0.05 = 5 points). */
  canaryMargin: 0.05,
  /** Canary 5xx rates are judged only over at least this many canary responses. */
  canaryMinRequests: 20,
  /** What a clone answers 200 on when ready: the supervisor's gate and the balancer's checks GET it. */
  healthPath: DEFAULT_HEALTH_PATH,
});

export interface DeployRequest {
  release: string;
  strategy?: Strategy;
  steps?: readonly number[];
  stepWait?: number;
  canaryClones?: number;
  canaryMargin?: number;
  /** Group stickiness for this deploy, in ms (1 s to 7 days); default: the balancer's option. */
  sticky?: number;
  /** Hosts per rolling batch: a number or a percentage (`25%`); default 1. */
  batch?: number | string;
  /** Deploy without hosts whose agent does not answer; they catch up when they return. */
  skipUnreachable?: boolean;
}

/** What `clones status` shows. */
export interface FleetStatus {
  release: string;
  epoch: number;
  strategy: Strategy;
  clonesWanted: number;
  weights: Record<string, number>;
  canary: DesiredState['canary'] | null;
  /** How long a client keeps its release group (ms), as the balancer applies it now. */
  groupStickiness: number;
  /** The balancer's version guard: the releases that may get new requests. */
  guard: string[] | null;
  lock: ReturnType<typeof readLock> | null;
  /** The deploy in progress (paused when an operator holds its canary), null when none runs. */
  deploy: DeployInProgress | null;
  /** The hosts, when the fleet spans hosts; null on one machine. */
  hosts: HostInfo[] | null;
  groups: { name: string; weight: number; targets: number; healthy: number }[];
  clones: (CloneInfo & { health: string; inFlight: number })[];
}

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

/** `state.hostClones` with `host` at `clones`; a host at the fleet's count is not listed. */
function hostCounts(state: DesiredState, host: string, clones: number): Record<string, number> | undefined {
  const { [host]: _old, ...others } = state.hostClones ?? {};
  const counts = clones === state.clones ? others : { ...others, [host]: clones };
  return Object.keys(counts).length > 0 ? counts : undefined;
}

/** The clones each release of a record wants: the release's, plus the canary's beside it. */
function wantOf(state: DesiredState): Map<string, number> {
  const want = new Map<string, number>([[state.release, state.clones]]);
  if (state.canary)
    want.set(state.canary.release, (want.get(state.canary.release) ?? 0) + state.canary.clones);
  return want;
}

/** A deploy request's canary knobs with the defaults filled in. */
function canaryPlan(request: DeployRequest): CanaryPlan {
  return {
    steps: request.steps ?? fleetDefaults.steps,
    stepWait: request.stepWait ?? fleetDefaults.stepWait,
    canaryClones: request.canaryClones ?? fleetDefaults.canaryClones,
    margin: request.canaryMargin ?? fleetDefaults.canaryMargin,
    minRequests: fleetDefaults.canaryMinRequests,
    sticky: request.sticky,
  };
}

/**
 * One host's fleet: the balancer, the supervised clones, and the desired-state record they converge to.
 * `deploy`, `rollback` and `scale` write a new record (higher epoch) and converge; a failed deploy writes
 * the previous release back and converges again (automatic rollback).
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
  #rollout: { batch: number | string | undefined; skipUnreachable: boolean } = {
    batch: undefined,
    skipUnreachable: true,
  };
  #poll: NodeJS.Timeout | undefined;
  readonly #desired: DesiredStateSource;
  readonly #logger: Logger;
  readonly #keep: number;
  #state: DesiredState | undefined;
  #listeners = new Set<Emit>();
  readonly #watchers = new Set<Emit>();
  readonly #published = new WeakSet<object>();
  #queue: Promise<unknown> = Promise.resolve();
  /** The operator's pause and abort of the deploy in progress. */
  readonly #control = new DeployControl();

  constructor(options: FleetOptions) {
    this.paths = options.paths;
    this.#desired = options.desired;
    this.#logger = options.logger;
    this.#keep = options.keepReleases ?? fleetDefaults.keepReleases;
    this.#state = options.desired.read();
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
      releaseFor: (clone) => this.#releaseFor(clone),
      onEvent: (event) => this.#fanOut(event),
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
        emit: (event) => this.#fanOut(event),
      });
    }
  }

  #fanOut(event: FleetEvent): void {
    for (const listener of this.#listeners) listener(event);
    this.#publish(event);
  }

  /**
   * Every event of the fleet, each once: clones changing state (crashes included), and the progress of
   * every deploy, rollback and scale whoever asked for it. What the dashboard and `clones up` show.
   *
   * @example
   *   const stop = fleet.watch((event) => console.log(event.type));
   */
  watch(listener: Emit): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  // A clone event reaches both a deploy's emit and the fan-out: the same object is published once.
  #publish(event: FleetEvent): void {
    if (this.#published.has(event)) return;
    this.#published.add(event);
    for (const watcher of this.#watchers) watcher(event);
  }

  /** `emit`, and every watcher too. */
  #tee(emit: Emit): Emit {
    return (event) => {
      emit(event);
      this.#publish(event);
    };
  }

  /** Every clone of the fleet: on this machine, or on every host in service. */
  #all(): CloneInfo[] {
    return this.hosts ? this.hosts.list() : this.supervisor.list();
  }

  #allowed(): (release: string) => boolean {
    const state = this.#state;
    return (release) => release === state?.release || release === state?.canary?.release;
  }

  /**
   * Across hosts: reads every agent each `ms` (a clone an agent restarted on a new port goes back into the
   * balancer) and catches up hosts that are not in service (joined late, or skipped while unreachable).
   */
  watchHosts(ms = 1000): void {
    const hosts = this.hosts;
    if (!hosts || this.#poll) return;
    let busy = false;
    this.#poll = setInterval(() => {
      if (busy) return;
      busy = true;
      const run = async () => {
        await hosts.syncAll(this.#allowed());
        if (hosts.parts.some((p) => !p.inService && p.reachable)) {
          await this.#serially(() => hosts.catchUp(this.#state, this.#allowed()));
          this.#weigh(this.#state!, wantOf(this.#state!));
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

  #serially<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }

  get desired(): DesiredState | undefined {
    return this.#state;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return this.balancer.listen(port, host);
  }

  /**
   * Makes the running clones match `state`: missing clones are started (behind their health gate), clones
   * of releases no longer wanted are drained and stopped, group weights and the version guard follow.
   * Rolling moves one clone at a time (start new, gate, add, drain old, stop old); blue-green starts every
   * new clone first, then switches all traffic at once. Throws when a clone fails its gate.
   */
  converge(state: DesiredState, emit: Emit = () => {}, signal?: AbortSignal): Promise<void> {
    return this.#serially(() => this.#converge(state, emit, signal));
  }

  async #converge(state: DesiredState, emit: Emit, signal?: AbortSignal): Promise<void> {
    if (this.#state && state.epoch < this.#state.epoch) return; // a stale record never wins
    this.#desired.write(state);
    this.#state = state;
    emit({
      type: 'desired',
      release: state.release,
      epoch: state.epoch,
      strategy: state.strategy,
      clones: state.clones,
      canary: state.canary ?? null,
      weights: state.weights,
      sticky: state.sticky ?? null,
    });
    this.#listeners.add(emit);
    try {
      this.balancer.setGroupStickiness(state.sticky);
      const want = wantOf(state);
      for (const release of want.keys()) readRelease(this.paths, release); // fail before touching anything
      if (this.hosts) {
        await this.#convergeHosts(this.hosts, state, want, signal);
        emit(convergedEvent(state));
        return;
      }
      for (const c of this.supervisor.list()) if (c.state === 'failed') await this.supervisor.stop(c.id, 0);
      await strategyFor(state.strategy)({
        clones: this.supervisor,
        want,
        guard: (includeServing) => this.#guard(want, includeServing),
        weigh: () => this.#weigh(state, want),
        signal,
      });
      emit(convergedEvent(state));
    } finally {
      this.#listeners.delete(emit);
    }
  }

  /**
   * Across hosts: ships the releases to every host in service, records the desired state on each agent
   * (what it restarts and boots from), then rolls host by host (in batches) or blue-green fleet-wide. A
   * canary's clones run on the first host.
   */
  async #convergeHosts(
    hosts: FleetHosts,
    state: DesiredState,
    want: ReadonlyMap<string, number>,
    signal?: AbortSignal,
  ): Promise<void> {
    await hosts.ship([...want.keys()], { skipUnreachable: this.#rollout.skipUnreachable });
    const first = hosts.inService()[0];
    const wantFor = (p: HostClones) => {
      const m = new Map([[state.release, clonesOn(state, p.host.name)]]);
      if (state.canary && p === first)
        m.set(state.canary.release, (m.get(state.canary.release) ?? 0) + state.canary.clones);
      return m;
    };
    await hosts.record(state, wantFor);
    const parts = hosts.inService();
    for (const p of parts) for (const c of p.list()) if (c.state === 'failed') await p.stop(c.id, 0);
    await acrossHosts(
      parts.map((p) => ({ name: p.host.name, clones: p, want: wantFor(p) })),
      {
        strategy: state.strategy,
        batch: batchSize(this.#rollout.batch, parts.length),
        guard: (includeServing) => this.#guard(want, includeServing),
        weigh: () => this.#weigh(state, want),
        signal,
      },
    );
  }

  /** While old clones still serve (rolling), the guard lets their release through too. */
  #guard(want: ReadonlyMap<string, number>, includeServing: boolean): void {
    const allowed = new Set(want.keys());
    if (includeServing) for (const c of this.#all()) if (c.state === 'serving') allowed.add(c.release);
    this.balancer.setReleases([...allowed]);
  }

  /** Group weights: the record's weights when it has them (canary), else by the number of serving clones. */
  #weigh(state: DesiredState, want: ReadonlyMap<string, number>): void {
    const weights: Record<string, number> = {};
    const groups = new Set(this.balancer.state().groups.map((g) => g.name));
    if (Object.keys(state.weights).length > 0) {
      for (const [release, weight] of Object.entries(state.weights)) {
        if (groups.has(groupOf(release))) weights[groupOf(release)] = weight;
      }
    } else {
      for (const c of this.#all()) {
        if (c.state !== 'serving' || !groups.has(c.group)) continue;
        const allowed = want.has(c.release) || this.balancer.state().releases?.includes(c.release);
        weights[c.group] = (weights[c.group] ?? 0) + (allowed ? 1 : 0);
      }
    }
    for (const g of groups) weights[g] ??= 0;
    this.balancer.setGroupWeights(weights);
  }

  #releaseFor(clone: CloneInfo): string {
    return releaseToRestart(this.#state, clone.release);
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
    emit = this.#tee(emit);
    const prev = this.#state;
    if (!prev) throw noDesiredState();
    const release = readRelease(this.paths, request.release).digest;
    const strategy = request.strategy ?? fleetDefaults.strategy;
    const sticky = request.sticky;
    const unlock = acquireDeployLock(this.paths.lock, { action, release });
    const handle = this.#control.begin({ action, release, strategy, emit }, signal);
    signal = handle.signal;
    const started = Date.now();
    let epoch = prev.epoch;
    this.#rollout = { batch: request.batch, skipUnreachable: request.skipUnreachable ?? false };
    try {
      emit({ type: 'deploy', action, release, from: prev.release, strategy });
      if (this.hosts && !this.#rollout.skipUnreachable) {
        // Fail before touching anything when a host cannot be reached, naming it.
        await this.hosts.syncAll(() => false);
        const away = this.hosts.inService().find((p) => !p.reachable);
        if (away)
          throw agentUnavailable(
            away.host.name,
            'deploy: reach the agent',
            `${away.host.bind}:${away.host.agentPort} does not answer (deploy with --skip-unreachable to go on without it; it catches up when it returns)`,
          );
      }
      if (release === prev.release && !prev.canary) {
        emit({ type: 'unchanged', release });
      } else {
        try {
          if (strategy === 'canary') {
            await canarySteps(prev, release, canaryPlan(request), {
              converge: (state) => this.converge(state, emit, signal),
              nextEpoch: () => ++epoch,
              targets: () => targetStates(this.balancer),
              clones: () => this.#all(),
              emit,
              signal,
              paused: handle.paused,
            });
          }
          await this.converge(
            {
              release,
              epoch: ++epoch,
              strategy,
              weights: {},
              clones: prev.clones,
              hostClones: prev.hostClones,
              sticky,
            },
            emit,
            signal,
          );
          await this.#assertNoStale(release);
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          emit({ type: 'rollback', reason, to: prev.release });
          // Rolling back must not stall on a host that went away: it still runs the previous release.
          this.#rollout = { batch: undefined, skipUnreachable: true };
          this.#logger.warn({ reason, to: prev.release }, 'deploy failed; rolling back');
          try {
            await this.converge(
              {
                ...prev,
                epoch: Math.max(epoch, this.#state?.epoch ?? 0) + 1,
                // The record now current says how it was reached: this deploy's strategy (a canary's
                // rollback has no steps: rolling), not the strategy of whatever deploy came before.
                strategy: strategy === 'canary' ? 'rolling' : strategy,
                canary: undefined,
                weights: {},
              },
              emit,
            );
          } catch (again) {
            this.#logger.error({ err: again }, 'rollback failed');
            emit({ type: 'rollback-failed', reason: (again as Error).message });
          }
          appendHistory(this.paths.history, {
            release,
            epoch,
            at: new Date().toISOString(),
            action,
            strategy,
            outcome: 'failed',
            reason,
          });
          throw deployFailed(reason, prev.release);
        }
      }
      appendHistory(this.paths.history, {
        release,
        epoch: this.#state!.epoch,
        at: new Date().toISOString(),
        action,
        strategy,
        outcome: 'ok',
      });
      const removed = gcReleases(this.paths, this.#keep, [
        release,
        prev.release,
        this.#state?.canary?.release,
      ]);
      if (removed.length > 0) emit({ type: 'gc', removed });
      emit({ type: 'done', release, ms: Date.now() - started });
    } finally {
      this.#rollout = { batch: undefined, skipUnreachable: true };
      handle.end();
      unlock();
    }
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
    emit = this.#tee(emit);
    return this.#serially(async () => {
      const state = this.#state;
      if (!state) throw noDesiredState();
      const clone = this.#all().find((c) => c.id === id);
      if (!clone || clone.state === 'stopped') throw unknownClone(id);
      const driver: CloneDriver = this.hosts
        ? this.hosts.parts.find((p) => p.list().some((c) => c.id === id))!
        : this.supervisor;
      const release = this.#releaseFor(clone);
      await driver.start(release);
      await driver.stop(id);
      this.#weigh(state, wantOf(state));
      emit({ type: 'done', release, clones: this.#all().length });
      return this.status();
    });
  }

  async #assertNoStale(release: string): Promise<void> {
    // Across hosts, what every agent says now, not what the last poll saw.
    if (this.hosts) await this.hosts.syncAll(this.#allowed());
    const stale = this.#all().filter((c) => c.release !== release);
    const targets = targetStates(this.balancer).filter((t) => t.release !== release);
    if (stale.length > 0 || targets.length > 0) {
      throw staleClones(Math.max(stale.length, targets.length));
    }
  }

  /** Rolls back to the release deployed before the current one (or to `release`). */
  rollback(emit: Emit, signal?: AbortSignal, release?: string): Promise<FleetStatus> {
    const current = this.#state?.release ?? '';
    const target = release ?? previousRelease(readHistory(this.paths.history), current);
    if (!target) throw noPreviousRelease();
    return this.deploy({ release: target, strategy: 'rolling' }, emit, signal, 'rollback');
  }

  /**
   * Sets the number of clones (on every host), or with `host` on that host only; new ones boot from the
   * current desired release.
   */
  async scale(clones: number, emit: Emit, host?: string): Promise<FleetStatus> {
    emit = this.#tee(emit);
    const state = this.#state;
    if (!state) throw noDesiredState();
    if (host !== undefined && !this.hosts?.parts.some((p) => p.host.name === host)) throw unknownHost(host);
    const unlock = acquireDeployLock(this.paths.lock, { action: 'scale', release: state.release });
    try {
      const next: DesiredState =
        host === undefined
          ? { ...state, epoch: state.epoch + 1, clones, hostClones: undefined }
          : { ...state, epoch: state.epoch + 1, hostClones: hostCounts(state, host, clones) };
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
      this.#rollout = { batch: undefined, skipUnreachable: true };
      unlock();
    }
    return this.status();
  }

  status(): FleetStatus {
    const state = this.#state;
    const lb = this.balancer.state();
    const targets = new Map(targetStates(this.balancer).map((t) => [t.id, t]));
    return {
      release: state?.release ?? '',
      epoch: state?.epoch ?? 0,
      strategy: state?.strategy ?? fleetDefaults.strategy,
      // Across hosts: the sum of every host's count (a host catching up included).
      clonesWanted: !state
        ? 0
        : this.hosts
          ? this.hosts.parts.reduce((n, p) => n + clonesOn(state, p.host.name), 0)
          : state.clones,
      weights: Object.fromEntries(lb.groups.map((g) => [g.name, g.weight])),
      canary: state?.canary ?? null,
      groupStickiness: lb.groupStickiness.duration,
      guard: lb.releases,
      lock: readLock(this.paths.lock) ?? null,
      deploy: this.#control.current,
      groups: lb.groups.map(({ name, weight, targets: n, healthy }) => ({
        name,
        weight,
        targets: n,
        healthy,
      })),
      hosts: this.hosts?.info(state) ?? null,
      clones: this.#all().map((c) => ({
        ...c,
        health: targets.get(c.id)?.health ?? 'none',
        inFlight: targets.get(c.id)?.inFlight ?? 0,
      })),
    };
  }

  /** Releases on disk with what the history says about them, newest first. */
  releases(): {
    release: string;
    builtAt: string;
    name: string;
    current: boolean;
    canary: boolean;
    deployedAt: string | null;
  }[] {
    const history = readHistory(this.paths.history);
    return listReleases(this.paths).map((r) => {
      const last = [...history].reverse().find((h) => h.release === r.digest && h.outcome === 'ok');
      return {
        release: r.digest,
        builtAt: r.manifest.builtAt,
        name: r.manifest.name,
        current: r.digest === this.#state?.release,
        canary: r.digest === this.#state?.canary?.release,
        deployedAt: last?.at ?? null,
      };
    });
  }

  /** The last `lines` lines of the clones' logs (every host's), or of one clone; `since` leaves older out. */
  async logs(clone: string | undefined, lines: number, since?: number): Promise<string> {
    if (clone === 'balancer') return this.#balancerLog(lines, since);
    if (this.hosts) return this.hosts.logs(clone, lines, since);
    return this.#localIds(clone)
      .flatMap((id) => readLogLines(this.paths.logs, id, { lines, since }).map((l) => `${id} ${l.text}\n`))
      .join('');
  }

  /**
   * `clones logs -f`: the last lines, then every new line (`<clone> <line>`, `host:clone` across hosts)
   * until `signal` aborts; clones that start later are followed too.
   */
  async followLogs(
    q: Omit<LogsQuery, 'follow'>,
    write: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.hosts && q.clone !== 'balancer') return this.hosts.followLogs(q, write, signal);
    write(await this.logs(q.clone, q.lines, q.since));
    await followLogs(
      this.paths.logs,
      () => (q.clone === 'balancer' ? [BALANCER_LOG] : this.#localIds(q.clone)),
      (l) => write(`${l.clone === BALANCER_LOG ? 'balancer' : l.clone} ${l.text}\n`),
      signal,
    );
  }

  /** `clones logs balancer`: the balancer's access log (`--access-log`), on this machine. */
  #balancerLog(lines: number, since?: number): string {
    return readLogLines(this.paths.logs, BALANCER_LOG, { lines, since })
      .map((l) => `balancer ${l.text}\n`)
      .join('');
  }

  #localIds(clone: string | undefined): string[] {
    return clone ? [basename(clone)] : this.supervisor.list().map((c) => c.id);
  }

  /** Adds a host (set up over SSH); it serves once it has caught up with the desired release. */
  async addHost(flag: string, emit: Emit): Promise<FleetStatus> {
    if (!this.hosts || !this.#state) throw unknownHost(flag);
    const part = await this.hosts.setupAndAdd(flag, this.#state.clones, emit);
    const deadline = Date.now() + 300_000;
    while (!part.inService && Date.now() < deadline) await sleep(250);
    emit({ type: 'done', release: this.#state.release });
    return this.status();
  }

  /** Takes a host out: its clones leave the balancer (drained), then stop. */
  async removeHost(name: string, emit: Emit): Promise<FleetStatus> {
    if (!this.hosts?.parts.some((p) => p.host.name === name)) throw unknownHost(name);
    await this.#serially(() => this.hosts!.remove(name, emit));
    this.#weigh(this.#state!, wantOf(this.#state!));
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
