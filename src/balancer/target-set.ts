import type { Logger } from 'pino';
import { duplicateTarget, unknownTarget } from '../errors.ts';
import type { GroupState } from './balancer-contract.ts';
import { checkGroupWeights } from './check-group-weights.ts';
import { groupStates } from './group-states.ts';
import type { Metrics } from './metrics.ts';
import type { ResolvedOptions, TargetSpec } from './options.ts';
import { roundRobin } from './pick/round-robin.ts';
import { type Health, Target } from './target.ts';

/**
 * The registry of targets and groups, and the rules that decide which targets of a group may take new
 * requests: health, passive ejection (never more than `passive.maxEjectedPercent` of a group), draining,
 * panic mode and slow start.
 *
 * @example
 *   const set = new TargetSet(options, metrics, logger);
 *   set.add({ id: 'c1', url: 'http://127.0.0.1:3001', group: 'blue' });
 *   const routable = set.candidates('blue', Date.now());
 */
export class TargetSet {
  readonly targets = new Map<string, Target>();
  readonly groupWeights = new Map<string, number>();
  /**
   * The version guard: when set, only targets whose release is in it get new requests, whatever their
   * health, panic mode included. The fleet sets it to the desired release (plus a pinned canary).
   */
  get allowedReleases(): ReadonlySet<string> | undefined {
    return this.#allowedReleases;
  }

  set allowedReleases(releases: ReadonlySet<string> | undefined) {
    this.#allowedReleases = releases;
    this.#onChange();
  }

  #allowedReleases: ReadonlySet<string> | undefined;
  readonly #options: ResolvedOptions;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #groupPicker = roundRobin();
  /**
   * Candidates per group, reused until a target changes state (its transitions call `#onChange`) or an ejection runs out, so the
   * hot path does not rebuild the list on every request.
   */
  readonly #cache = new Map<string, { version: number; until: number; list: Target[] }>();
  #version = 0;
  /** Handed to every target: its transitions invalidate the candidate lists. */
  readonly #onChange = (): void => {
    this.#version++;
  };

  constructor(options: ResolvedOptions, metrics: Metrics, logger: Logger) {
    this.#options = options;
    this.#metrics = metrics;
    this.#logger = logger;
    for (const [name, weight] of Object.entries(options.groups)) this.groupWeights.set(name, weight);
  }

  add(spec: TargetSpec): Target {
    if (spec && typeof spec.id === 'string' && this.targets.has(spec.id)) throw duplicateTarget(spec.id);
    const u = this.#options.upstream;
    const pool = {
      idleTimeout: u.idleTimeout,
      maxSockets: u.maxSockets,
      maxFreeSockets: u.maxFreeSockets,
      maxUploadSockets: u.maxUploadSockets,
      timeout: u.timeout,
    };
    const target = new Target(spec, pool, this.#onChange);
    if (!this.groupWeights.has(target.group)) {
      // A new group gets no new clients until it is given a weight, so adding a canary never shifts traffic.
      this.groupWeights.set(target.group, this.groupWeights.size === 0 ? this.#options.firstGroupWeight : 0);
    }
    if (!this.#options.healthCheck.enabled) this.#enter(target, 'healthy', Date.now());
    this.targets.set(target.id, target);
    this.#onChange();
    return target;
  }

  get(id: string): Target {
    const target = this.targets.get(id);
    if (!target) throw unknownTarget(id);
    return target;
  }

  delete(target: Target): void {
    this.targets.delete(target.id);
    target.remove();
    target.pool.destroy();
    let used = false;
    for (const t of this.targets.values()) if (t.group === target.group) used = true;
    if (!used && !(target.group in this.#options.groups)) this.groupWeights.delete(target.group);
  }

  setGroupWeights(weights: Record<string, number>): void {
    checkGroupWeights(weights);
    for (const [name, weight] of Object.entries(weights)) this.groupWeights.set(name, weight);
    this.#logger.info({ weights }, 'group weights set');
  }

  /**
   * The targets of `group` that may take a new request. Healthy, not ejected and not draining; in panic
   * (fewer than `panicThreshold`% healthy) every target that is not draining. The list is shared: never
   * change it.
   */
  candidates(group: string, now: number): readonly Target[] {
    let entry = this.#cache.get(group);
    if (entry === undefined || entry.version !== this.#version || now >= entry.until) {
      entry = { version: this.#version, until: Number.POSITIVE_INFINITY, list: [] };
      entry.list = this.#build(group, now, entry);
      this.#cache.set(group, entry);
    }
    const chosen = entry.list;
    const slowStart = this.#options.slowStart;
    if (slowStart > 0) for (const t of chosen) t.ramp(now, slowStart);
    return chosen;
  }

  #build(group: string, now: number, entry: { until: number }): Target[] {
    const all: Target[] = [];
    const healthy: Target[] = [];
    const releases = this.#allowedReleases;
    for (const t of this.targets.values()) {
      if (t.group !== group || t.draining) continue;
      if (releases !== undefined && !releases.has(t.release)) continue;
      all.push(t);
      if (t.isEjected(now)) {
        // The list changes when this ejection runs out.
        if (t.ejectedUntil < entry.until) entry.until = t.ejectedUntil;
      } else if (t.health === 'healthy') healthy.push(t);
    }
    return this.#options.panic && healthy.length * 100 < all.length * this.#options.panicThreshold
      ? all
      : healthy;
  }

  /**
   * Each group's size and health as `state()` reports them: its targets that are not draining and pass the
   * version guard, how many of those are healthy and not ejected, and whether the group is in panic.
   */
  groupStates(now: number): GroupState[] {
    const o = this.#options;
    return groupStates(
      this.groupWeights,
      this.targets.values(),
      this.#allowedReleases,
      (t) => t.health === 'healthy' && !t.isEjected(now),
      (healthy, targets) => o.panic && healthy * 100 < targets * o.panicThreshold,
    );
  }

  /** Chooses a group for a new client by smooth weighted round-robin over groups that can serve. */
  pickGroup(now: number, exclude?: string): string | undefined {
    if (this.groupWeights.size === 1) {
      // The common case, one group: no weighing to do.
      for (const name of this.groupWeights.keys())
        return name !== exclude && this.candidates(name, now).length > 0 ? name : undefined;
    }
    const offered: { id: string; weight: number; outstanding: number }[] = [];
    let fallback: string | undefined;
    for (const [name, weight] of this.groupWeights) {
      if (name === exclude) continue;
      if (this.candidates(name, now).length === 0) continue;
      fallback ??= name;
      if (weight > 0) offered.push({ id: name, weight, outstanding: 0 });
    }
    if (offered.length === 0) return fallback;
    return offered.length === 1 ? offered[0]!.id : this.#groupPicker.pick(offered).id;
  }

  /** Is `group` still a place to keep a sticky client: it has weight and a routable target. */
  canKeep(group: string, now: number): boolean {
    const weight = this.groupWeights.get(group);
    return weight !== undefined && weight > 0 && this.candidates(group, now).length > 0;
  }

  /** Feeds one active health-check result; returns true when the target changed state. */
  checkResult(target: Target, passed: boolean, now: number): boolean {
    const hc = this.#options.healthCheck;
    const to = target.checkResult(passed, hc.healthyThreshold, hc.unhealthyThreshold);
    return to !== undefined && this.#enter(target, to, now);
  }

  /** Passive health: a connect error or 502/503/504 from the target. */
  recordFailure(target: Target, now: number): void {
    const p = this.#options.passive;
    if (!p.enabled || target.isEjected(now)) return;
    if (target.recordFailure() < p.consecutiveFailures) return;
    let size = 0;
    let ejected = 0;
    for (const t of this.targets.values()) {
      if (t.group !== target.group) continue;
      size++;
      if (t.isEjected(now)) ejected++;
    }
    if ((ejected + 1) * 100 > size * p.maxEjectedPercent) return;
    const duration = target.eject(now, p);
    this.#metrics.ejection(target.id);
    this.#logger.warn(
      { target: target.id, ms: duration, n: target.ejections },
      'target ejected after consecutive failures',
    );
  }

  #enter(target: Target, health: Health, now: number): boolean {
    // Slow start skips targets that arrive in a group with nothing healthy: there is nobody to protect.
    let others = false;
    if (health === 'healthy') {
      for (const t of this.targets.values())
        if (t !== target && t.group === target.group && t.health === 'healthy') others = true;
    }
    const from = target.enter(health, now, others);
    this.#metrics.transition(target.id, health);
    this.#logger.info({ target: target.id, from, to: health }, 'target health changed');
    return true;
  }
}
