// The fault schedule, drawn from the seed (printed, and the same for the same seed and length), and the
// code that injects each fault into the running system.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Deploy, FaultKind } from './history.ts';
import type { SoakSystem } from './system.ts';

/** Every fault kind, in the order of value the issue gives. */
export const FAULT_KINDS: readonly FaultKind[] = [
  'clone-kill',
  'agent-kill',
  'link-down',
  'redis-master-kill',
  'replica-pause',
  'replica-kill',
  'deploy-during-fault',
  'balancer-restart',
];

export interface PlannedFault {
  kind: FaultKind;
  /** ms after the workload starts. */
  at: number;
  target: string;
  /** How long the fault is held before it is undone (faults that are undone). */
  holdMs: number;
}

/**
 * mulberry32: a small seeded generator, so that a seed gives the same schedule and workload choices.
 *
 * @example
 *   const random = seeded(1); random(); // 0.6270739405881613
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The schedule: after a calm start, one fault per slot (every kind once before any repeats, in an order the
 * seed shuffles), each at a seeded offset within its slot; the end is calm too, so recovery is seen.
 *
 * @example
 *   planFaults(1, 180_000).map((f) => `${f.at} ${f.kind} ${f.target}`);
 */
export function planFaults(seed: number, durationMs: number, kinds = FAULT_KINDS): PlannedFault[] {
  const random = seeded(seed);
  const calmStart = 10_000;
  const calmEnd = 20_000;
  const usable = Math.max(0, durationMs - calmStart - calmEnd);
  const slot = Math.max(18_000, usable / kinds.length);
  const count = Math.floor(usable / slot);
  const plan: PlannedFault[] = [];
  let order: FaultKind[] = [];
  for (let i = 0; i < count; i++) {
    if (order.length === 0) {
      order = [...kinds];
      for (let j = order.length - 1; j > 0; j--) {
        const k = Math.floor(random() * (j + 1));
        [order[j], order[k]] = [order[k]!, order[j]!];
      }
    }
    const kind = order.shift()!;
    const host = `h${1 + Math.floor(random() * 3)}`;
    const replica = Math.floor(random() * 2);
    const target =
      kind === 'replica-pause' || kind === 'replica-kill'
        ? `replica${replica}`
        : kind === 'redis-master-kill'
          ? 'redis master'
          : kind === 'balancer-restart'
            ? 'clones up'
            : host;
    plan.push({ kind, at: calmStart + i * slot + Math.floor(random() * slot * 0.3), target, holdMs: 5000 });
  }
  return plan;
}

/**
 * Injects one fault and resolves when it is undone (or, for an instant fault, when it was dealt), with a note
 * and the deploy it started, if any.
 *
 * @example
 *   const { note } = await inject(system, { kind: 'link-down', at: 0, target: 'h2', holdMs: 5000 });
 */
export async function inject(
  system: SoakSystem,
  fault: PlannedFault,
): Promise<{ note: string; deploy?: Deploy; failoverAt?: number }> {
  const { hosts, pg } = system;
  const homeOf = (name: string) => join(hosts.hosts.find((h) => h.name === name)!.dir, 'clones');
  const killClone = async (host: string) => {
    const clones = JSON.parse(readFileSync(join(homeOf(host), 'agent-clones.json'), 'utf8')) as {
      id: string;
      pid: number;
    }[];
    const victim = clones[0];
    if (!victim) return `no clone on ${host}`;
    await hosts.exec(host, ['kill', '-9', String(victim.pid)]);
    return `kill -9 clone ${host}:${victim.id} (pid ${victim.pid})`;
  };
  switch (fault.kind) {
    case 'clone-kill':
      return { note: await killClone(fault.target) };
    case 'agent-kill': {
      const pid = readFileSync(join(homeOf(fault.target), 'agent.pid'), 'utf8').trim();
      await hosts.exec(fault.target, ['kill', '-9', pid]);
      return { note: `kill -9 agent of ${fault.target} (pid ${pid})` };
    }
    case 'link-down':
      await hosts.linkDown(fault.target);
      await sleep(fault.holdMs);
      await hosts.linkUp(fault.target);
      return { note: `${fault.target} link down ${fault.holdMs} ms` };
    case 'redis-master-kill': {
      const at = Date.now();
      const { from, to } = await system.sentinel.killMaster();
      return { note: `kill -9 redis master :${from}; sentinels promoted :${to}`, failoverAt: at };
    }
    case 'replica-pause': {
      const i = Number(fault.target.slice(-1));
      await pg.pauseReplay(i);
      await sleep(fault.holdMs);
      await pg.resumeReplay(i);
      return { note: `replay paused on replica ${i} for ${fault.holdMs} ms` };
    }
    case 'replica-kill': {
      const i = Number(fault.target.slice(-1));
      // kill -9 of the replica's postmaster (its backends follow it): a crash, with no goodbye to clients;
      // started again after the hold, it runs crash recovery and resumes streaming from its slot.
      await pg.killReplica(i);
      await sleep(fault.holdMs);
      await pg.startReplica(i);
      return { note: `kill -9 replica ${i}, started again after ${fault.holdMs} ms` };
    }
    case 'deploy-during-fault': {
      const killed = await killClone(fault.target);
      appendFileSync(join(system.app, 'server.ts'), `\n// soak deploy ${Date.now()}\n`);
      const start = Date.now();
      const r = await system.cli(['deploy', 'shop', '--json', '--skip-unreachable']);
      const end = Date.now();
      const events = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string; release?: string });
      const done = events.find((e) => e.type === 'done');
      const ok = r.code === 0 && done?.release !== undefined;
      // A failed deploy still names the release it tried (its clones served while it ran).
      const release = done?.release ?? events.find((e) => e.type === 'release')?.release ?? '';
      return {
        note: `${killed}, then a rolling deploy: ${ok ? `ok ${release.slice(0, 12)}` : `failed (exit ${r.code}) ${r.stderr.trim().split('\n').at(-1) ?? ''}`}`,
        deploy: { start, end, ok, release },
      };
    }
    case 'balancer-restart':
      await system.restartUp();
      return { note: 'kill -9 clones up (the balancer), started again on the same port' };
  }
}
