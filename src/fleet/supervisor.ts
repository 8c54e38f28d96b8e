import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/index.ts';
import { type ClonesError, cloneFailed, cloneNotReady } from '../errors.ts';
import { freePort } from '../free-port.ts';
import { appError, lastLogLines } from './app-error.ts';
import { type CloneInfo, groupOf } from './clone-info.ts';
import { adoptedProc, type CloneProc, childProc } from './clone-proc.ts';
import type { CloneEvent } from './fleet-event.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { checkHealthPath, DEFAULT_HEALTH_PATH } from './health-path.ts';
import { startLogRotation } from './log-rotation.ts';
import { processUsage } from './process-usage.ts';
import { probeReady } from './readiness-probe.ts';
import { RestartPolicy, type RestartTimings } from './restart-policy.ts';
import { lastLines, spawnClone } from './spawn-clone.ts';
import { SupervisedClone } from './supervised-clone.ts';

/**
 * Supervisor timings; the defaults follow kamal-proxy and PM2 (see docs/fleet.md).
 *
 * @example
 *   new Supervisor({ ...supervisorDefaults, readyTimeout: 5000, paths, balancer, env, logger, ... });
 */
export interface SupervisorTimings extends RestartTimings {
  readyTimeout: number;
  stopGrace: number;
  drainTimeout: number;
}

export const supervisorDefaults: Readonly<SupervisorTimings> = Object.freeze({
  /** A new clone must answer its health path (GET /up by default) with 200 within this, or it fails. */
  readyTimeout: 30_000,
  /** SIGTERM, then SIGKILL after this. */
  stopGrace: 10_000,
  /** In-flight requests of a clone being stopped get this long to finish. */
  drainTimeout: 30_000,
  /** Restart delay after a crash: starts here, x1.5 per crash in a row, capped at `maxBackoff`. */
  initialBackoff: 100,
  backoffFactor: 1.5,
  maxBackoff: 15_000,
  /** `crashLoopExits` exits within `crashLoopWindow` mark a clone failed. */
  crashLoopExits: 10,
  crashLoopWindow: 60_000,
  /** A clone up this long has recovered: its backoff starts again from `initialBackoff`. */
  stableAfter: 30_000,
});

export interface SupervisorOptions extends Partial<SupervisorTimings> {
  paths: FleetPaths;
  /** Where serving clones are added; none on a host agent (the control machine's balancer adds them). */
  balancer?: Balancer | undefined;
  /** The address clones listen on (HOST) and are probed at; default 127.0.0.1. */
  bind?: string | undefined;
  /** The path a clone must answer 200 on before it serves (`--health-path`); default `/up`. */
  healthPath?: string | undefined;
  /**
   * Clones in their own session, writing straight to their log file: they keep serving when the
   * supervising process dies (a host agent), and a new supervisor can `adopt` them.
   */
  detached?: boolean | undefined;
  /** Environment every clone gets (SESSION_STORE, SESSION_SECRET, ...), on top of PORT and the CLONES_* ids. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** The release a crashed clone is replaced with: the current desired one, never an older one. */
  releaseFor: (clone: CloneInfo) => string;
  onEvent?: (event: CloneEvent) => void;
}

/**
 * Starts, watches and stops clone processes. A clone is ready when its process is up and its health path
 * (GET /up by default) answers 200; only then is it added to the balancer. A clone that exits is taken out
 * of the balancer at once and restarted, from the current desired release, with backoff; 10 exits in a
 * minute mark it failed. How a clone's process starts is spawn-clone.ts, how it is handled clone-proc.ts, and
 * when it restarts restart-policy.ts.
 *
 * @example
 *   const sup = new Supervisor({ paths, balancer, env, logger, releaseFor: () => desired.release });
 *   const clone = await sup.start(release);
 *   await sup.stop(clone.id);
 */
export class Supervisor {
  readonly #o: Required<Omit<SupervisorOptions, 'onEvent' | 'balancer' | 'healthPath'>> &
    Pick<SupervisorOptions, 'onEvent' | 'balancer'>;
  #healthPath: string;
  #readyTimeout: number;
  readonly #clones = new Map<string, SupervisedClone>();
  readonly #restart: RestartPolicy;
  #next = 1;
  #closed = false;
  /** Stops the size-based rotation of the clones' logs (copy and truncate, see log-rotation.ts). */
  readonly #stopRotation: () => void;

  constructor(options: SupervisorOptions) {
    this.#o = {
      ...supervisorDefaults,
      ...options,
      bind: options.bind ?? '127.0.0.1',
      detached: options.detached ?? false,
    };
    this.#healthPath = checkHealthPath('healthPath', options.healthPath ?? DEFAULT_HEALTH_PATH);
    this.#readyTimeout = this.#o.readyTimeout;
    this.#restart = new RestartPolicy(this.#o);
    mkdirSync(options.paths.logs, { recursive: true, mode: 0o700 });
    this.#stopRotation = startLogRotation(options.paths.logs);
  }

  list(): CloneInfo[] {
    return [...this.#clones.values()].map((c) => c.info());
  }

  /**
   * Changes the path clones started from now on are checked on (a host agent told by the control machine).
   *
   * @example
   *   supervisor.setHealthPath('/healthz');
   */
  setHealthPath(path: string): void {
    this.#healthPath = checkHealthPath('healthPath', path);
  }

  /** Changes how long clones started from now on have to get ready (the control machine's --ready-timeout). */
  setReadyTimeout(ms: number): void {
    this.#readyTimeout = ms;
  }

  /** Starts one clone of `release` and resolves once it serves behind the balancer; rejects when its gate fails. */
  async start(release: string): Promise<CloneInfo> {
    const clone = new SupervisedClone(`c${this.#next++}`, release);
    this.#clones.set(clone.id, clone);
    try {
      await this.#boot(clone);
    } catch (err) {
      this.#clones.delete(clone.id);
      clone.log?.end();
      throw err;
    }
    return clone.info();
  }

  /**
   * Takes over a clone a previous supervisor started (a host agent that was restarted): it serves on
   * `port` and answers GET /up there. Its exit is noticed by polling its pid; it restarts like any clone.
   * Resolves false (and leaves it alone) when it is gone or does not answer.
   */
  async adopt(info: { id: string; release: string; port: number; pid: number }): Promise<boolean> {
    const proc = adoptedProc(info.pid);
    if (!proc.alive() || !(await probeReady(this.#o.bind, info.port, this.#healthPath)).ready) return false;
    const clone = new SupervisedClone(info.id, info.release);
    clone.port = info.port;
    clone.child = proc;
    clone.state = 'serving';
    clone.readyMs = 0;
    // Its uptime counts from its own start, not from this supervisor's.
    clone.startedAt = processUsage(info.pid)?.startedAt ?? clone.startedAt;
    this.#clones.set(clone.id, clone);
    const n = Number(/^c(\d+)$/.exec(info.id)?.[1] ?? 0);
    if (n >= this.#next) this.#next = n + 1;
    void proc.exited.then(() => this.#onExit(clone, proc, null, null));
    await this.#register(clone, Date.now() + this.#readyTimeout);
    this.#emitServing(clone);
    return true;
  }

  /** Drains the clone in the balancer, then SIGTERM, then SIGKILL after `stopGrace`; forgets it. */
  async stop(id: string, drainTimeout = this.#o.drainTimeout): Promise<void> {
    const clone = this.#clones.get(id);
    if (!clone || clone.stopping) return;
    clone.stopping = true;
    clone.state = 'draining';
    this.#emit({ type: 'clone', clone: id, release: clone.release, state: 'draining' });
    await this.#unregister(clone, drainTimeout);
    await this.#terminate(clone);
    clone.state = 'stopped';
    this.#clones.delete(id);
    clone.log?.end();
    this.#emit({ type: 'clone', clone: id, release: clone.release, state: 'stopped' });
  }

  /** Stops every clone (in parallel) and restarts none. */
  async stopAll(drainTimeout = this.#o.drainTimeout): Promise<void> {
    this.#closed = true;
    this.#stopRotation();
    await Promise.all([...this.#clones.keys()].map((id) => this.stop(id, drainTimeout)));
  }

  async #boot(clone: SupervisedClone): Promise<void> {
    const readyTimeout = this.#readyTimeout;
    const deadline = Date.now() + readyTimeout;
    for (;;) {
      clone.port = await freePort(this.#o.bind);
      clone.state = 'starting';
      clone.reason = undefined;
      clone.startedAt = Date.now();
      clone.readyMs = null;
      this.#emit({
        type: 'clone',
        clone: clone.id,
        release: clone.release,
        state: 'starting',
        port: clone.port,
      });
      const child = this.#spawn(clone);
      const result = await this.#waitReady(clone, child, deadline);
      if (result === 'ready') break;
      if (result === 'stopped') throw cloneFailed(clone.id, 'stopped while starting');
      if (result === 'timeout') {
        await this.#terminate(clone, 0);
        const within = readyTimeout % 1000 === 0 ? `${readyTimeout / 1000}s` : `${readyTimeout} ms`;
        const said = clone.checked || `GET ${this.#healthPath} got no answer`;
        return this.#fail(clone, `not ready within ${within}: ${said}`, (detail) =>
          cloneNotReady(clone.id, within, said, detail),
        );
      }
      if (this.#restart.crashLooping(clone)) return this.#fail(clone, this.#restart.crashLoopReason);
      if (Date.now() + clone.backoff > deadline)
        return this.#fail(clone, `exited before it was ready (${result})`);
      clone.state = 'backoff';
      await sleep(clone.backoff);
    }
    await this.#register(clone, deadline);
    clone.state = 'serving';
    clone.readyMs = Date.now() - clone.startedAt;
    this.#emitServing(clone);
  }

  #emitServing(clone: SupervisedClone): void {
    this.#emit({
      type: 'clone',
      clone: clone.id,
      release: clone.release,
      state: 'serving',
      port: clone.port,
    });
  }

  #fail(
    clone: SupervisedClone,
    why: string,
    toError = (detail: string): ClonesError => cloneFailed(clone.id, `${why}${detail}`),
  ): never {
    clone.state = 'failed';
    // The app's own error (message and first frame) says why; the very last lines are Node's stack tail.
    const lines = lastLines(this.#o, clone);
    const error = appError(lines);
    const shown = error.length > 0 ? error : lastLogLines(lines);
    const tail = shown.map((l) => `  ${l}`).join('\n');
    clone.reason = why;
    this.#emit({ type: 'clone', clone: clone.id, release: clone.release, state: 'failed', reason: why });
    throw toError(tail ? `; ${error.length > 0 ? "the app's error" : 'last log lines'}:\n${tail}` : '');
  }

  #spawn(clone: SupervisedClone): CloneProc {
    const child = spawnClone(this.#o, clone);
    const proc = childProc(child);
    clone.child = proc;
    child.once('exit', (code, signal) => this.#onExit(clone, proc, code, signal));
    return proc;
  }

  async #waitReady(clone: SupervisedClone, child: CloneProc, deadline: number): Promise<string> {
    for (;;) {
      if (clone.stopping) return 'stopped';
      if (!child.alive()) return child.exitText();
      const check = await probeReady(this.#o.bind, clone.port, this.#healthPath);
      if (check.ready) return 'ready';
      clone.checked = check.said;
      if (Date.now() > deadline) return 'timeout';
      await sleep(25);
    }
  }

  async #register(clone: SupervisedClone, deadline: number): Promise<void> {
    const balancer = this.#o.balancer;
    if (!balancer) return;
    balancer.addTarget({
      id: clone.id,
      url: `http://${this.#o.bind}:${clone.port}`,
      group: clone.group,
      release: clone.release,
    });
    clone.registered = true;
    // The balancer runs its own checks; wait until it counts the clone healthy so callers can rely on it.
    while (Date.now() < deadline + 5000) {
      if (balancer.target(clone.id)?.health === 'healthy') return;
      await sleep(25);
    }
    // The clone answered its health path here, yet the balancer's checks do not pass: it stays registered
    // (it gets traffic as soon as they do), and whoever reads the log learns why it gets none meanwhile.
    this.#o.logger.warn(
      { clone: clone.id, health: balancer.target(clone.id)?.health },
      'the clone is ready, but the balancer does not count it healthy yet: it gets no traffic until it does',
    );
  }

  async #unregister(clone: SupervisedClone, drainTimeout: number): Promise<void> {
    if (!clone.registered || !this.#o.balancer) return;
    clone.registered = false;
    try {
      await this.#o.balancer.removeTarget(clone.id, { deadline: drainTimeout });
    } catch (err) {
      this.#o.logger.warn({ err, clone: clone.id }, 'removing target failed');
    }
  }

  async #terminate(clone: SupervisedClone, grace = this.#o.stopGrace): Promise<void> {
    const child = clone.child;
    if (!child?.alive()) return;
    child.kill(grace === 0 ? 'SIGKILL' : 'SIGTERM');
    const late = await Promise.race([child.exited.then(() => false), sleep(grace, true)]);
    if (late) {
      this.#o.logger.warn({ clone: clone.id, pid: child.pid }, 'clone ignored SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
      await child.exited;
    }
  }

  #onExit(
    clone: SupervisedClone,
    child: CloneProc,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (clone.child !== child || clone.stopping) return;
    this.#restart.exited(clone);
    if (clone.state !== 'serving') return; // #boot is watching it.
    this.#o.logger.warn({ clone: clone.id, code, signal }, 'clone exited');
    this.#emit({ type: 'clone', clone: clone.id, release: clone.release, state: 'exited', code, signal });
    void this.#recover(clone);
  }

  async #recover(clone: SupervisedClone): Promise<void> {
    await this.#unregister(clone, 0);
    if (this.#restart.crashLooping(clone)) {
      clone.state = 'failed';
      clone.reason = this.#restart.crashLoopReason;
      this.#emit({
        type: 'clone',
        clone: clone.id,
        release: clone.release,
        state: 'failed',
        reason: clone.reason,
      });
      return;
    }
    clone.state = 'backoff';
    await sleep(clone.backoff);
    if (this.#closed || clone.stopping) return;
    clone.restarts++;
    const release = this.#o.releaseFor(clone.info());
    if (release !== clone.release) {
      clone.release = release;
      clone.group = groupOf(release);
    }
    try {
      await this.#boot(clone);
    } catch (err) {
      this.#o.logger.error({ err, clone: clone.id }, 'replacement clone failed');
    }
  }

  #emit(event: CloneEvent): void {
    this.#o.onEvent?.({ ...event, at: new Date().toISOString() });
  }
}
