import { duplicateTarget } from '../../../errors.ts';
import type { GroupState, Health, TargetState } from '../../balancer-contract.ts';
import { groupStates } from '../../group-states.ts';
import type { ResolvedOptions, TargetSpec } from '../../options.ts';
import { parseTargetSpec } from '../../parse-target-spec.ts';
import { haproxyWeight, type ServerLine } from './haproxy-config.ts';

/** One target as the engine models it; HAProxy's view is read back into `health` and `inFlight`. */
export interface HaproxyEntry {
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

/**
 * What the haproxy engine wants HAProxy to run: targets, group weights, the version guard and the group
 * stickiness duration, and how each of them is written for HAProxy (server lines, map files) and reported
 * (`state()`). The engine changes it, then makes HAProxy match it.
 *
 * @example
 *   const model = new HaproxyModel(options);
 *   const e = model.add({ id: 'c1', url: 'http://127.0.0.1:3001' });
 *   model.wanted(e); // 'maint' until its health checks pass
 */
export class HaproxyModel {
  readonly entries = new Map<string, HaproxyEntry>();
  readonly groupWeights: Map<string, number>;
  /** The version guard: only these releases are ready; undefined lets any be. */
  allowed: ReadonlySet<string> | undefined;
  groupDuration: number;
  readonly #options: ResolvedOptions;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.groupWeights = new Map(Object.entries(options.groups));
    this.groupDuration = options.groupStickiness.duration;
  }

  add(spec: TargetSpec): HaproxyEntry {
    const o = this.#options;
    const parsed = parseTargetSpec(spec);
    if (this.entries.has(parsed.id)) throw duplicateTarget(parsed.id);
    if (!this.groupWeights.has(parsed.group))
      this.groupWeights.set(parsed.group, this.groupWeights.size === 0 ? o.firstGroupWeight : 0);
    const entry: HaproxyEntry = {
      ...parsed,
      admitted: !o.healthCheck.enabled,
      draining: false,
      health: o.healthCheck.enabled ? 'unknown' : 'healthy',
      inFlight: 0,
      applied: undefined,
    };
    this.entries.set(entry.id, entry);
    return entry;
  }

  /** Forgets the entry, and its group when nothing else is in it and the options do not name it. */
  delete(e: HaproxyEntry): void {
    this.entries.delete(e.id);
    let used = false;
    for (const t of this.entries.values()) if (t.group === e.group) used = true;
    if (!used && !(e.group in this.#options.groups)) this.groupWeights.delete(e.group);
  }

  /** The admin state the entry should have in HAProxy now. */
  wanted(e: HaproxyEntry): 'ready' | 'maint' {
    const allowed = this.allowed;
    return e.admitted && !e.draining && (allowed === undefined || allowed.has(e.release)) ? 'ready' : 'maint';
  }

  /** groups.map: each group's weight, and the group stickiness duration in seconds. */
  groupsMap(): string {
    const groups = [...this.groupWeights].map(([name, weight]) => `${name} ${weight}`);
    return `${[...groups, `@duration ${Math.floor(this.groupDuration / 1000)}`].join('\n')}\n`;
  }

  /** release.map: each server's release, for the x-clones-release header. */
  releasesMap(): string {
    return `${[...this.entries.values()].map((e) => `${e.id} ${e.release}`).join('\n')}\n`;
  }

  servers(): ServerLine[] {
    return [...this.entries.values()].map((e) => ({
      id: e.id,
      host: e.host,
      port: e.port,
      group: e.group,
      weight: haproxyWeight(e.weight),
      disabled: this.wanted(e) === 'maint',
    }));
  }

  /** As the built-in engine counts them; HAProxy has no panic mode, so `panic` is always false. */
  groupStates(): GroupState[] {
    const entries = this.entries.values();
    return groupStates(
      this.groupWeights,
      entries,
      this.allowed,
      (e) => e.admitted && e.health === 'healthy',
      () => false,
    );
  }

  inFlight(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.inFlight;
    return n;
  }

  targetState(e: HaproxyEntry): TargetState {
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
