import { setTimeout as sleep } from 'node:timers/promises';
import { canaryBreach, cloneFailed } from '../../errors.ts';
import type { CloneInfo } from '../clone-info.ts';
import type { DesiredState } from '../desired-state.ts';
import type { Emit } from '../fleet-event.ts';
import type { TargetState } from '../target-state.ts';
import { throwIfStopped } from './rollout-context.ts';

/** The canary's knobs, as a deploy request gives them (defaults filled in). */
export interface CanaryPlan {
  steps: readonly number[];
  stepWait: number;
  canaryClones: number;
  /** The canary fails when its 5xx rate exceeds the stable group's by more than this (0.05 = 5 points). */
  margin: number;
  /** 5xx rates are judged only over at least this many canary responses. */
  minRequests: number;
  sticky?: number | undefined;
}

/** What the canary steps drive: the fleet's converge, and what the balancer and the clones report. */
export interface CanaryDeps {
  converge(state: DesiredState): Promise<void>;
  nextEpoch(): number;
  targets(): TargetState[];
  clones(): CloneInfo[];
  emit: Emit;
  signal?: AbortSignal | undefined;
  /** An operator holds the canary at its step: the watch goes on, the step's time stands still. */
  paused?: () => boolean;
}

/**
 * Canary: the canary release runs beside the stable one and gets each step's share of new clients (the
 * balancer's group weights, sticky per client), watched for `stepWait` each; a 5xx rate above the stable
 * group's by more than `margin`, or a failed canary clone, throws (the deploy then rolls back); while `paused`
 * holds, the step's clock stops and the checks go on. Returns
 * before the 100 % step: the caller promotes by converging to the new release.
 *
 * @example
 *   await canarySteps(prev, release, plan, { converge, nextEpoch, targets, clones, emit });
 */
export async function canarySteps(
  prev: DesiredState,
  release: string,
  plan: CanaryPlan,
  deps: CanaryDeps,
): Promise<void> {
  const canary = { release, clones: plan.canaryClones };
  for (const pct of plan.steps) {
    if (pct >= 100) break;
    await deps.converge({
      ...prev,
      epoch: deps.nextEpoch(),
      strategy: 'canary',
      canary,
      weights: { [prev.release]: 100 - pct, [release]: pct },
      sticky: plan.sticky,
    });
    deps.emit({ type: 'step', weight: pct, wait: plan.stepWait });
    await watchCanary(prev.release, release, plan, deps);
  }
}

/** Compares 5xx rates of the canary and the stable group, as the balancer measured them, for `stepWait`. */
async function watchCanary(
  stable: string,
  canary: string,
  plan: CanaryPlan,
  deps: CanaryDeps,
): Promise<void> {
  const sample = () => new Map(deps.targets().map((t) => [t.id, t]));
  const start = sample();
  let end = Date.now() + plan.stepWait;
  let last = Date.now();
  for (;;) {
    throwIfStopped(deps.signal);
    const now = Date.now();
    if (deps.paused?.()) end += now - last;
    last = now;
    const failed = deps.clones().find((c) => c.release === canary && c.state === 'failed');
    if (failed) throw cloneFailed(`${failed.id} (canary)`, failed.reason ?? 'failed');
    const totals = { [stable]: { requests: 0, errors: 0 }, [canary]: { requests: 0, errors: 0 } };
    for (const [id, now] of sample()) {
      const t = totals[now.release];
      if (!t) continue;
      const before = start.get(id);
      t.requests += now.requests - (before?.requests ?? 0);
      t.errors += now.errors - (before?.errors ?? 0);
    }
    const c = totals[canary]!;
    const s = totals[stable]!;
    if (c.requests >= plan.minRequests) {
      const cRate = c.errors / c.requests;
      const sRate = s.requests > 0 ? s.errors / s.requests : 0;
      if (cRate > sRate + plan.margin) {
        throw canaryBreach(
          `5xx rate ${(cRate * 100).toFixed(1)}% (${c.errors}/${c.requests}) exceeds the stable group's ${(sRate * 100).toFixed(1)}% by more than ${(plan.margin * 100).toFixed(1)} points`,
        );
      }
    }
    if (now >= end && !deps.paused?.()) return;
    await sleep(Math.min(200, Math.max(1, end - now)));
  }
}
