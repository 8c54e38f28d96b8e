import type { Strategy } from '../desired-state.ts';
import { blueGreen } from './blue-green.ts';
import {
  type CloneDriver,
  type RolloutContext,
  startShort,
  tally,
  throwIfStopped,
} from './rollout-context.ts';

/** One host's part of a rollout: its clones and what it should run. */
export interface HostPart {
  name: string;
  clones: CloneDriver;
  want: ReadonlyMap<string, number>;
}

export interface AcrossHostsOptions {
  strategy: Strategy;
  /** Hosts rolled at once (rolling); the rest wait for the batch before them. */
  batch: number;
  /** The fleet-wide guard and weights (every host's clones count). */
  guard(includeServing: boolean): void;
  weigh(): void;
  signal?: AbortSignal | undefined;
}

/**
 * Converges many hosts. Rolling goes in batches of hosts, and the host is the unit: on each host of a batch
 * the new clones start together while its old ones serve, then the old ones drain and stop (as Kamal swaps a
 * host's containers) while the next batch starts; the rollout ends once every drain has. One clone at a time
 * on every host would make a deploy take a clone's boot time per clone of the fleet; this takes it per batch,
 * with the same capacity kept (the host's old clones serve until its new ones are healthy) and the rest of
 * the fleet untouched. The guard keeps the old release allowed while any host still has an old clone, so a
 * host that is done never shuts the old clones of another out early. Blue-green starts the new clones on every host, then switches the
 * guard once for the whole fleet, then stops every old clone. A canary record only adds the canary clones to
 * the hosts whose `want` names it.
 *
 * @example
 *   await acrossHosts(parts, { strategy: 'rolling', batch: 1, guard, weigh });
 */
export async function acrossHosts(parts: readonly HostPart[], o: AcrossHostsOptions): Promise<void> {
  const ctxOf = (part: HostPart): RolloutContext => ({
    clones: part.clones,
    want: part.want,
    // Another host still running old clones keeps their release allowed.
    guard: (includeServing) =>
      o.guard(includeServing || parts.some((p) => p !== part && tally(ctxOf(p)).stale.length > 0)),
    weigh: o.weigh,
    signal: o.signal,
  });
  if (o.strategy === 'blue-green') {
    o.guard(true);
    await Promise.all(parts.map((p) => startShort(ctxOf(p), tally(ctxOf(p)))));
    throwIfStopped(o.signal);
    o.guard(false);
    o.weigh();
    await Promise.all(parts.flatMap((p) => tally(ctxOf(p)).stale.map((c) => p.clones.stop(c.id))));
  }
  // Nothing to replace anywhere (first start, scale): every host at once.
  const replacing = parts.some((p) => tally(ctxOf(p)).stale.length > 0);
  const batch = replacing ? Math.max(1, o.batch) : parts.length;
  const drains = new Drains();
  try {
    for (let i = 0; i < parts.length; i += batch) {
      throwIfStopped(o.signal);
      await Promise.all(parts.slice(i, i + batch).map((p) => swapHost(ctxOf(p), drains)));
    }
  } finally {
    // A deploy returns (or rolls back) only once no old clone is left draining on any host.
    await drains.settled();
  }
  drains.throwFirst();
  // What the swap left (a clone that failed to start, an excess after a scale): converged host by host.
  await Promise.all(parts.map((p) => blueGreen(ctxOf(p))));
  o.guard(false);
  o.weigh();
}

/**
 * A host's turn in a rolling deploy: its new clones start beside the old ones, new requests switch to them,
 * and the old ones are handed to `drains` rather than awaited, so the next batch of hosts starts while they
 * drain. The guard keeps their release allowed while they are listed (another host's ctx counts them stale).
 */
async function swapHost(ctx: RolloutContext, drains: Drains): Promise<void> {
  const before = tally(ctx);
  ctx.guard(before.stale.length > 0);
  if (before.short.length > 0) await startShort(ctx, before);
  throwIfStopped(ctx.signal);
  const stale = tally(ctx).stale;
  if (stale.length === 0) return;
  ctx.guard(false);
  ctx.weigh();
  for (const c of stale) drains.add(ctx.clones.stop(c.id));
}

/** Stops in flight: none rejects unhandled; the first failure is thrown once all have settled. */
class Drains {
  readonly #pending: Promise<void>[] = [];
  readonly #failures: unknown[] = [];

  add(stop: Promise<void>): void {
    this.#pending.push(stop.catch((err: unknown) => void this.#failures.push(err)));
  }

  async settled(): Promise<void> {
    await Promise.all(this.#pending);
  }

  throwFirst(): void {
    if (this.#failures.length > 0) throw this.#failures[0];
  }
}

/**
 * Hosts per rolling batch from `--batch N` or `--batch 25%` (at least 1).
 *
 * @example
 *   batchSize('50%', 4); // 2
 */
export function batchSize(batch: number | string | undefined, hosts: number): number {
  if (batch === undefined) return 1;
  if (typeof batch === 'number') return Math.max(1, Math.min(batch, hosts));
  const m = /^(\d{1,3})%$/.exec(batch);
  if (m) return Math.max(1, Math.ceil((hosts * Number(m[1])) / 100));
  return Math.max(1, Math.min(Number(batch) || 1, hosts));
}
