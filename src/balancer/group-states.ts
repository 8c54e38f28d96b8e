import type { GroupState } from './balancer-contract.ts';

/** What `groupStates` needs of a target, in either engine's model. */
export interface GroupMember {
  readonly group: string;
  readonly release: string;
  readonly draining: boolean;
}

/**
 * Each group's size and health as `state()` reports them, the same in both engines: the targets that are
 * not draining and pass the version guard (`releases`), how many of those `serves` counts as healthy, and
 * whether `panics(healthy, targets)` puts the group in panic.
 *
 * @example
 *   groupStates(set.groupWeights, set.targets.values(), undefined, (t) => t.health === 'healthy', () => false);
 */
export function groupStates<T extends GroupMember>(
  weights: ReadonlyMap<string, number>,
  members: Iterable<T>,
  releases: ReadonlySet<string> | undefined,
  serves: (member: T) => boolean,
  panics: (healthy: number, targets: number) => boolean,
): GroupState[] {
  const all = [...members];
  const groups: GroupState[] = [];
  for (const [name, weight] of weights) {
    let targets = 0;
    let healthy = 0;
    for (const t of all) {
      if (t.group !== name || t.draining) continue;
      if (releases !== undefined && !releases.has(t.release)) continue;
      targets++;
      if (serves(t)) healthy++;
    }
    groups.push({ name, weight, targets, healthy, panic: panics(healthy, targets) });
  }
  return groups;
}
