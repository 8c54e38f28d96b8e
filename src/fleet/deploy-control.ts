import { deployAborted, deployCancelled, noDeployInProgress } from '../errors.ts';
import type { Strategy } from './desired-state.ts';
import type { Emit } from './fleet-event.ts';

/** The deploy in progress, as `clones status` and the dashboard show it. */
export interface DeployInProgress {
  action: string;
  release: string;
  strategy: Strategy;
  /** A canary held at its current step (`clones deploy --pause`); its breach checks go on. */
  paused: boolean;
}

/** What a running deploy reads: its signal (aborted by its client or by an operator) and its pause. */
export interface DeployHandle {
  signal: AbortSignal;
  paused(): boolean;
  end(): void;
}

/**
 * The operator's hold on the deploy in progress: pause and resume a canary between its checks, abort any
 * deploy (it rolls back, as when its client goes). One deploy at a time (the deploy lock sees to that); the
 * CLI (`clones deploy --pause|--resume|--abort`) and the dashboard reach it through the same fleet API.
 *
 * @example
 *   const handle = control.begin({ action: 'deploy', release, strategy: 'canary', emit }, clientSignal);
 *   try { await canarySteps(..., { signal: handle.signal, paused: handle.paused }); } finally { handle.end(); }
 */
type Current = DeployInProgress & { controller: AbortController; emit: Emit };

export class DeployControl {
  #current: Current | undefined;

  begin(what: Omit<DeployInProgress, 'paused'> & { emit: Emit }, client?: AbortSignal): DeployHandle {
    const controller = new AbortController();
    const current: Current = { ...what, paused: false, controller };
    this.#current = current;
    const onClient = () => controller.abort(deployCancelled());
    if (client?.aborted) onClient();
    else client?.addEventListener('abort', onClient, { once: true });
    return {
      signal: controller.signal,
      paused: () => current.paused,
      end: () => {
        client?.removeEventListener('abort', onClient);
        if (this.#current === current) this.#current = undefined;
      },
    };
  }

  /** The deploy in progress, if any. */
  get current(): DeployInProgress | null {
    const c = this.#current;
    return c ? { action: c.action, release: c.release, strategy: c.strategy, paused: c.paused } : null;
  }

  /** Holds a canary at its current step. CLONES_FLEET_NO_DEPLOY when no canary deploy runs. */
  pause(): DeployInProgress {
    const c = this.#canary('pause');
    if (!c.paused) {
      c.paused = true;
      c.emit({ type: 'paused', release: c.release });
    }
    return this.current!;
  }

  /** Lets a paused canary go on with the rest of its step. */
  resume(): DeployInProgress {
    const c = this.#canary('resume');
    if (c.paused) {
      c.paused = false;
      c.emit({ type: 'resumed', release: c.release });
    }
    return this.current!;
  }

  /** Aborts the deploy in progress: it rolls back to the release before it, as a failed deploy does. */
  abort(): DeployInProgress {
    const c = this.#current;
    if (!c) throw noDeployInProgress('abort', 'no deploy is in progress');
    const was = this.current!;
    c.paused = false;
    c.controller.abort(deployAborted());
    return was;
  }

  #canary(verb: string): Current {
    const c = this.#current;
    if (!c) throw noDeployInProgress(verb, 'no deploy is in progress');
    if (c.strategy !== 'canary' || c.action !== 'deploy')
      throw noDeployInProgress(verb, `the ${c.action} in progress is ${c.strategy}, not a canary`);
    return c;
  }
}
