import type { Balancer } from '../balancer/index.ts';
import { staleClones } from '../errors.ts';
import { type CloneInfo, groupOf } from './clone-info.ts';
import { clonesOn, type DesiredState, type DesiredStateSource } from './desired-state.ts';
import type { EventHub } from './event-hub.ts';
import { convergedEvent, type Emit } from './fleet-event.ts';
import type { FleetHosts } from './fleet-hosts.ts';
import type { FleetPaths } from './fleet-paths.ts';
import type { HostClones } from './host-clones.ts';
import { readRelease } from './release.ts';
import { releaseToRestart } from './restart-release.ts';
import { acrossHosts, batchSize } from './rollout/across-hosts.ts';
import { strategyFor } from './rollout/index.ts';
import type { Supervisor } from './supervisor.ts';
import { targetStates } from './target-state.ts';

export interface FleetConvergerOptions {
  paths: FleetPaths;
  desired: DesiredStateSource;
  balancer: Balancer;
  supervisor: Supervisor;
  hosts: FleetHosts | undefined;
  events: EventHub;
}

/** How a converge across hosts rolls: hosts per batch, and whether an unreachable host is left behind. */
export interface HostRollout {
  batch: number | string | undefined;
  skipUnreachable: boolean;
}

/** The clones each release of a record wants: the release's, plus the canary's beside it. */
function wantOf(state: DesiredState): Map<string, number> {
  const want = new Map<string, number>([[state.release, state.clones]]);
  if (state.canary)
    want.set(state.canary.release, (want.get(state.canary.release) ?? 0) + state.canary.clones);
  return want;
}

/**
 * The desired-state record of a fleet and the work of making the clones match it, one converge at a time:
 * on this machine through the supervisor, across hosts through their agents; the balancer's group weights
 * and version guard follow. Deploys, rollbacks, scaling and host changes all end in a converge.
 *
 * @example
 *   const converger = new FleetConverger({ paths, desired, balancer, supervisor, hosts, events });
 *   await converger.converge({ ...converger.state!, epoch: converger.state!.epoch + 1, clones: 5 });
 */
export class FleetConverger {
  /** How the next converges roll across hosts; a deploy sets it for its own span. */
  rollout: HostRollout = { batch: undefined, skipUnreachable: true };
  readonly #o: FleetConvergerOptions;
  #state: DesiredState | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: FleetConvergerOptions) {
    this.#o = options;
    this.#state = options.desired.read();
  }

  /** The record the clones converge to (the last one written); undefined before the first. */
  get state(): DesiredState | undefined {
    return this.#state;
  }

  /** Back to the default rollout: a host that went away is left behind, never waited for. */
  resetRollout(): void {
    this.rollout = { batch: undefined, skipUnreachable: true };
  }

  /** Runs `job` after every converge (or other job) queued before it. */
  serially<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Every clone of the fleet: on this machine, or on every host in service. */
  all(): CloneInfo[] {
    return this.#o.hosts ? this.#o.hosts.list() : this.#o.supervisor.list();
  }

  /** The releases the current record lets into the balancer. */
  allowed(): (release: string) => boolean {
    const state = this.#state;
    return (release) => release === state?.release || release === state?.canary?.release;
  }

  /** The release a clone that crashed is replaced with: the current desired one, never an older one. */
  releaseFor(clone: CloneInfo): string {
    return releaseToRestart(this.#state, clone.release);
  }

  /**
   * Makes the running clones match `state`: missing clones are started (behind their health gate), clones
   * of releases no longer wanted are drained and stopped, group weights and the version guard follow.
   * Rolling moves one clone at a time (start new, gate, add, drain old, stop old); blue-green starts every
   * new clone first, then switches all traffic at once. Throws when a clone fails its gate.
   */
  converge(state: DesiredState, emit: Emit = () => {}, signal?: AbortSignal): Promise<void> {
    return this.serially(() => this.#converge(state, emit, signal));
  }

  async #converge(state: DesiredState, emit: Emit, signal?: AbortSignal): Promise<void> {
    if (this.#state && state.epoch < this.#state.epoch) return; // a stale record never wins
    this.#o.desired.write(state);
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
    const unfollow = this.#o.events.follow(emit);
    try {
      this.#o.balancer.setGroupStickiness(state.sticky);
      const want = wantOf(state);
      for (const release of want.keys()) readRelease(this.#o.paths, release); // fail before touching anything
      if (this.#o.hosts) {
        await this.#convergeHosts(this.#o.hosts, state, want, signal);
        emit(convergedEvent(state));
        return;
      }
      const supervisor = this.#o.supervisor;
      for (const c of supervisor.list()) if (c.state === 'failed') await supervisor.stop(c.id, 0);
      await strategyFor(state.strategy)({
        clones: supervisor,
        want,
        guard: (includeServing) => this.#guard(want, includeServing),
        weigh: () => this.#weigh(state, want),
        signal,
      });
      emit(convergedEvent(state));
    } finally {
      unfollow();
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
    await hosts.ship([...want.keys()], { skipUnreachable: this.rollout.skipUnreachable });
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
        batch: batchSize(this.rollout.batch, parts.length),
        guard: (includeServing) => this.#guard(want, includeServing),
        weigh: () => this.#weigh(state, want),
        signal,
      },
    );
  }

  /** Group weights again from the current record (after clones changed outside a converge). */
  reweigh(): void {
    this.#weigh(this.#state!, wantOf(this.#state!));
  }

  /** Throws CLONES_FLEET_STALE_CLONES when a clone, or a balancer target, runs another release than `release`. */
  async assertNoStale(release: string): Promise<void> {
    // Across hosts, what every agent says now, not what the last poll saw.
    if (this.#o.hosts) await this.#o.hosts.syncAll(this.allowed());
    const stale = this.all().filter((c) => c.release !== release);
    const targets = targetStates(this.#o.balancer).filter((t) => t.release !== release);
    if (stale.length > 0 || targets.length > 0) {
      throw staleClones(Math.max(stale.length, targets.length));
    }
  }

  /** While old clones still serve (rolling), the guard lets their release through too. */
  #guard(want: ReadonlyMap<string, number>, includeServing: boolean): void {
    const allowed = new Set(want.keys());
    if (includeServing) for (const c of this.all()) if (c.state === 'serving') allowed.add(c.release);
    this.#o.balancer.setReleases([...allowed]);
  }

  /** Group weights: the record's weights when it has them (canary), else by the number of serving clones. */
  #weigh(state: DesiredState, want: ReadonlyMap<string, number>): void {
    const balancer = this.#o.balancer;
    const weights: Record<string, number> = {};
    const groups = new Set(balancer.state().groups.map((g) => g.name));
    if (Object.keys(state.weights).length > 0) {
      for (const [release, weight] of Object.entries(state.weights)) {
        if (groups.has(groupOf(release))) weights[groupOf(release)] = weight;
      }
    } else {
      for (const c of this.all()) {
        if (c.state !== 'serving' || !groups.has(c.group)) continue;
        const allowed = want.has(c.release) || balancer.state().releases?.includes(c.release);
        weights[c.group] = (weights[c.group] ?? 0) + (allowed ? 1 : 0);
      }
    }
    for (const g of groups) weights[g] ??= 0;
    balancer.setGroupWeights(weights);
  }
}
