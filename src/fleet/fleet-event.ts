import type { DesiredState, Strategy } from './desired-state.ts';

/** The states a clone goes through, plus `exited` (a crash, before the supervisor restarts it). */
export type CloneEventState =
  | 'starting'
  | 'serving'
  | 'draining'
  | 'stopped'
  | 'backoff'
  | 'failed'
  | 'exited';

interface Stamped {
  /** When it happened (ISO); the supervisor stamps its own events. */
  at?: string;
  /** The host it happened on, when the fleet spans hosts. */
  host?: string;
}

/** A clone changed state. */
export interface CloneEvent extends Stamped {
  type: 'clone';
  clone: string;
  release: string;
  state: CloneEventState;
  port?: number;
  reason?: string;
  code?: number | null;
  signal?: string | null;
}

/** A step of `clones setup` (or of a deploy) on one host: shipping, checks, the agent. */
export interface HostEvent extends Stamped {
  type: 'host';
  host: string;
  step: string;
  outcome: 'ok' | 'changed' | 'failed' | 'skipped';
  detail?: string;
  /** Bytes sent over SSH in this step (shipping). */
  bytes?: number;
}

/**
 * A progress event: what `deploy --json` streams as NDJSON and the live table folds in. One union, so a
 * consumer that switches on `type` gets each event's own fields.
 *
 * @example
 *   const line = (e: FleetEvent) => (e.type === 'clone' ? `${e.clone} ${e.state}` : e.type);
 */
export type FleetEvent =
  | CloneEvent
  | HostEvent
  | (Stamped & { type: 'release'; release: string; created: boolean; dir?: string })
  | (Stamped & {
      type: 'desired';
      release: string;
      epoch: number;
      strategy: Strategy;
      clones: number;
      canary: { release: string; clones: number } | null;
      weights: Record<string, number>;
      sticky: number | null;
    })
  /** `canary`: the canary release running beside `release` at this step of a canary deploy. */
  | (Stamped & { type: 'converged'; release: string; epoch: number; canary?: string })
  | (Stamped & { type: 'deploy'; action: string; release: string; from: string; strategy: Strategy })
  /** `clones scale`: from `from` to `clones` clones (per host, across hosts) of `release`. */
  | (Stamped & { type: 'scale'; release: string; from: number; clones: number; host?: string })
  | (Stamped & { type: 'unchanged'; release: string })
  | (Stamped & { type: 'step'; weight: number; wait: number })
  /** A canary held at its step by an operator, and let go on. */
  | (Stamped & { type: 'paused'; release: string })
  | (Stamped & { type: 'resumed'; release: string })
  | (Stamped & { type: 'rollback'; reason: string; to: string })
  | (Stamped & { type: 'rollback-failed'; reason: string })
  | (Stamped & { type: 'gc'; removed: string[] })
  | (Stamped & { type: 'done'; release: string; ms?: number; clones?: number })
  | (Stamped & { type: 'result'; ok: true; status: unknown })
  | (Stamped & { type: 'result'; ok: false; error: { code: string; message: string } });

/** Where events go. */
export type Emit = (event: FleetEvent) => void;

/**
 * The event a converge ends with. During a canary the record's release is still the stable one: the event
 * names the canary too, so progress does not read as "converged on the old release" before the canary step.
 *
 * @example
 *   emit(convergedEvent(state)); // { type: 'converged', release, epoch, canary? }
 */
export function convergedEvent(state: DesiredState): FleetEvent {
  return {
    type: 'converged',
    release: state.release,
    epoch: state.epoch,
    ...(state.canary ? { canary: state.canary.release } : {}),
  };
}
