import type { Logger } from 'pino';
import { badTargetSpec, duplicateTarget, unknownTarget } from '../errors.ts';
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
    this.changed();
  }

  #allowedReleases: ReadonlySet<string> | undefined;
  readonly #options: ResolvedOptions;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #groupPicker = roundRobin();
  /**
   * Candidates per group, reused until a target changes state (`changed()`) or an ejection runs out, so the
   * hot path does not rebuild the list on every request.
   */
  readonly #cache = new Map<string, { version: number; until: number; list: Target[] }>();
  #version = 0;

  constructor(options: ResolvedOptions, metrics: Metrics, logger: Logger) {
    this.#options = options;
    this.#metrics = metrics;
    this.#logger = logger;
    for (const [name, weight] of Object.entries(options.groups)) this.groupWeights.set(name, weight);
  }

  add(spec: TargetSpec): Target {
    if (spec && typeof spec.id === 'string' && this.targets.has(spec.id)) throw duplicateTarget(spec.id);
    const u = this.#options.upstream;
    const target = new Target(spec, {
      idleTimeout: u.idleTimeout,
      maxSockets: u.maxSockets,
      maxFreeSockets: u.maxFreeSockets,
      maxUploadSockets: u.maxUploadSockets,
      timeout: u.timeout,
    });
    if (!this.groupWeights.has(target.group)) {
      // A new group gets no new clients until it is given a weight, so adding a canary never shifts traffic.
      this.groupWeights.set(target.group, this.groupWeights.size === 0 ? this.#options.firstGroupWeight : 0);
    }
    if (!this.#options.healthCheck.enabled) this.#enter(target, 'healthy', Date.now());
    this.targets.set(target.id, target);
    this.changed();
    return target;
  }

  get(id: string): Target {
    const target = this.targets.get(id);
    if (!target) throw unknownTarget(id);
    return target;
  }

  delete(target: Target): void {
    target.removed = true;
    this.targets.delete(target.id);
    this.changed();
    target.pool.destroy();
    let used = false;
    for (const t of this.targets.values()) if (t.group === target.group) used = true;
    if (!used && !(target.group in this.#options.groups)) this.groupWeights.delete(target.group);
  }

  setGroupWeights(weights: Record<string, number>): void {
    for (const [name, weight] of Object.entries(weights)) {
      if (!Number.isInteger(weight) || weight < 0 || weight > 1000) {
        throw badTargetSpec(`groups.${name}`, `weight must be a whole number 0-1000; got ${String(weight)}`);
      }
    }
    for (const [name, weight] of Object.entries(weights)) this.groupWeights.set(name, weight);
    this.#logger.info({ weights }, 'group weights set');
  }

  /** Call after changing a target's routing state (draining, health, ejection) from outside this class. */
  changed(): void {
    this.#version++;
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
    if (this.#options.slowStart > 0) for (const t of chosen) t.weight = this.#rampedWeight(t, now);
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
    if (passed) {
      target.fails = 0;
      if (target.health === 'healthy') return false;
      target.passes++;
      if (target.passes >= hc.healthyThreshold) return this.#enter(target, 'healthy', now);
      return false;
    }
    target.passes = 0;
    if (target.health === 'unhealthy') return false;
    target.fails++;
    // An unknown target that fails its first check is unhealthy at once: it never served anyone.
    if (target.health === 'unknown' || target.fails >= hc.unhealthyThreshold) {
      return this.#enter(target, 'unhealthy', now);
    }
    return false;
  }

  /** Passive health: a connect error or 502/503/504 from the target. */
  recordFailure(target: Target, now: number): void {
    const p = this.#options.passive;
    if (!p.enabled || target.isEjected(now)) return;
    target.consecutiveFailures++;
    if (target.consecutiveFailures < p.consecutiveFailures) return;
    let size = 0;
    let ejected = 0;
    for (const t of this.targets.values()) {
      if (t.group !== target.group) continue;
      size++;
      if (t.isEjected(now)) ejected++;
    }
    if ((ejected + 1) * 100 > size * p.maxEjectedPercent) return;
    target.ejections = now - target.lastEjectionEnd > p.maxEjection ? 1 : target.ejections + 1;
    const duration = Math.min(p.baseEjection * target.ejections, p.maxEjection);
    target.ejectedUntil = now + duration;
    this.changed();
    target.lastEjectionEnd = target.ejectedUntil;
    target.consecutiveFailures = 0;
    this.#metrics.ejection(target.id);
    this.#logger.warn(
      { target: target.id, ms: duration, n: target.ejections },
      'target ejected after consecutive failures',
    );
  }

  recordSuccess(target: Target): void {
    target.consecutiveFailures = 0;
  }

  #enter(target: Target, health: Health, now: number): boolean {
    const from = target.health;
    target.health = health;
    this.changed();
    target.passes = 0;
    target.fails = 0;
    if (health === 'healthy') {
      // Slow start skips targets that arrive in a group with nothing healthy: there is nobody to protect.
      let others = false;
      for (const t of this.targets.values())
        if (t !== target && t.group === target.group && t.health === 'healthy') others = true;
      target.healthySince = others ? now : 0;
      target.ejectedUntil = 0;
      target.consecutiveFailures = 0;
    }
    this.#metrics.transition(target.id, health);
    this.#logger.info({ target: target.id, from, to: health }, 'target health changed');
    return true;
  }

  #rampedWeight(target: Target, now: number): number {
    const elapsed = now - target.healthySince;
    if (elapsed >= this.#options.slowStart) return target.baseWeight;
    return Math.max(target.baseWeight * 0.1, (target.baseWeight * elapsed) / this.#options.slowStart);
  }
}
