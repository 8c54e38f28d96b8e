import type { Logger } from 'pino';
import type { Balancer } from '../balancer/index.ts';
import { agentUnavailable, deployFailed, noDesiredState } from '../errors.ts';
import type { DeployControl } from './deploy-control.ts';
import { acquireDeployLock } from './deploy-lock.ts';
import { canaryPlan, type DeployRequest } from './deploy-request.ts';
import { appendHistory } from './desired-state.ts';
import type { FleetConverger } from './fleet-converger.ts';
import { fleetDefaults } from './fleet-defaults.ts';
import type { Emit } from './fleet-event.ts';
import type { FleetHosts } from './fleet-hosts.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { gcReleases, readRelease } from './release.ts';
import { canarySteps } from './rollout/index.ts';
import { targetStates } from './target-state.ts';

/** What a deploy works with: the fleet's converger and balancer, its files, and the operator's control. */
export interface DeployContext {
  converger: FleetConverger;
  balancer: Balancer;
  hosts: FleetHosts | undefined;
  paths: FleetPaths;
  control: DeployControl;
  logger: Logger;
  /** Releases kept on disk after a deploy that succeeded. */
  keepReleases: number;
}

/**
 * Rolls `request.release` out with its strategy, under the deploy lock: a canary's steps first, then the
 * record with the new release, then a check that no clone and no balancer target runs another. On any
 * failure it converges back to the previous release and throws CLONES_FLEET_DEPLOY_FAILED with the reason;
 * either way the history says what happened. Releases beyond `keepReleases` are removed after a success.
 *
 * @example
 *   await deployRelease(context, { release, strategy: 'blue-green' }, emit, undefined, 'deploy');
 */
export async function deployRelease(
  ctx: DeployContext,
  request: DeployRequest,
  emit: Emit,
  signal: AbortSignal | undefined,
  action: 'deploy' | 'rollback',
): Promise<void> {
  const { converger, paths, hosts } = ctx;
  const prev = converger.state;
  if (!prev) throw noDesiredState();
  const release = readRelease(paths, request.release).digest;
  const strategy = request.strategy ?? fleetDefaults.strategy;
  const sticky = request.sticky;
  const unlock = acquireDeployLock(paths.lock, { action, release });
  const handle = ctx.control.begin({ action, release, strategy, emit }, signal);
  signal = handle.signal;
  const started = Date.now();
  let epoch = prev.epoch;
  converger.rollout = { batch: request.batch, skipUnreachable: request.skipUnreachable ?? false };
  try {
    emit({ type: 'deploy', action, release, from: prev.release, strategy });
    if (hosts && !converger.rollout.skipUnreachable) {
      // Fail before touching anything when a host cannot be reached, naming it.
      await hosts.syncAll(() => false);
      const away = hosts.inService().find((p) => !p.reachable);
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
            converge: (state) => converger.converge(state, emit, signal),
            nextEpoch: () => ++epoch,
            targets: () => targetStates(ctx.balancer),
            clones: () => converger.all(),
            emit,
            signal,
            paused: handle.paused,
          });
        }
        await converger.converge(
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
        await converger.assertNoStale(release);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        emit({ type: 'rollback', reason, to: prev.release });
        // Rolling back must not stall on a host that went away: it still runs the previous release.
        converger.resetRollout();
        ctx.logger.warn({ reason, to: prev.release }, 'deploy failed; rolling back');
        try {
          await converger.converge(
            {
              ...prev,
              epoch: Math.max(epoch, converger.state?.epoch ?? 0) + 1,
              // The record now current says how it was reached: this deploy's strategy (a canary's
              // rollback has no steps: rolling), not the strategy of whatever deploy came before.
              strategy: strategy === 'canary' ? 'rolling' : strategy,
              canary: undefined,
              weights: {},
            },
            emit,
          );
        } catch (again) {
          ctx.logger.error({ err: again }, 'rollback failed');
          emit({ type: 'rollback-failed', reason: (again as Error).message });
        }
        appendHistory(paths.history, {
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
    appendHistory(paths.history, {
      release,
      epoch: converger.state!.epoch,
      at: new Date().toISOString(),
      action,
      strategy,
      outcome: 'ok',
    });
    const removed = gcReleases(paths, ctx.keepReleases, [
      release,
      prev.release,
      converger.state?.canary?.release,
    ]);
    if (removed.length > 0) emit({ type: 'gc', removed });
    emit({ type: 'done', release, ms: Date.now() - started });
  } finally {
    converger.resetRollout();
    handle.end();
    unlock();
  }
}
