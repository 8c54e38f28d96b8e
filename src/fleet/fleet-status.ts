import type { Balancer } from '../balancer/index.ts';
import type { CloneInfo } from './clone-info.ts';
import type { DeployInProgress } from './deploy-control.ts';
import { readLock } from './deploy-lock.ts';
import { clonesOn, type DesiredState, type Strategy } from './desired-state.ts';
import { fleetDefaults } from './fleet-defaults.ts';
import type { FleetHosts, HostInfo } from './fleet-hosts.ts';
import { targetStates } from './target-state.ts';

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

/** What a fleet's status is read from. */
export interface StatusSources {
  state: DesiredState | undefined;
  balancer: Balancer;
  hosts: FleetHosts | undefined;
  /** The deploy lock file. */
  lock: string;
  deploy: DeployInProgress | null;
  /** Every clone of the fleet (on this machine, or on every host in service). */
  clones: () => CloneInfo[];
}

/**
 * The fleet as `clones status` shows it: the desired record, the balancer's groups, guard and stickiness,
 * the deploy lock and the deploy in progress, the hosts, and every clone with its health in the balancer.
 *
 * @example
 *   const status = fleetStatus({ state, balancer, hosts, lock: paths.lock, deploy: null, clones });
 */
export function fleetStatus(s: StatusSources): FleetStatus {
  const { state, hosts } = s;
  const lb = s.balancer.state();
  const targets = new Map(targetStates(s.balancer).map((t) => [t.id, t]));
  return {
    release: state?.release ?? '',
    epoch: state?.epoch ?? 0,
    strategy: state?.strategy ?? fleetDefaults.strategy,
    // Across hosts: the sum of every host's count (a host catching up included).
    clonesWanted: !state
      ? 0
      : hosts
        ? hosts.parts.reduce((n, p) => n + clonesOn(state, p.host.name), 0)
        : state.clones,
    weights: Object.fromEntries(lb.groups.map((g) => [g.name, g.weight])),
    canary: state?.canary ?? null,
    groupStickiness: lb.groupStickiness.duration,
    guard: lb.releases,
    lock: readLock(s.lock) ?? null,
    deploy: s.deploy,
    groups: lb.groups.map(({ name, weight, targets: n, healthy }) => ({
      name,
      weight,
      targets: n,
      healthy,
    })),
    hosts: hosts?.info(state) ?? null,
    clones: s.clones().map((c) => ({
      ...c,
      health: targets.get(c.id)?.health ?? 'none',
      inFlight: targets.get(c.id)?.inFlight ?? 0,
    })),
  };
}
