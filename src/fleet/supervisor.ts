import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/index.ts';
import { cloneFailed } from '../errors.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { readRelease } from './release.ts';
import { tsxLoader } from './tsx-loader.ts';

export type CloneState = 'starting' | 'serving' | 'draining' | 'stopped' | 'backoff' | 'failed';

/** One clone as `clones status` shows it. */
export interface CloneInfo {
  id: string;
  release: string;
  group: string;
  port: number;
  pid: number | null;
  state: CloneState;
  restarts: number;
  startedAt: string;
  /** Milliseconds from the process's start to serving (its /up passed and the balancer has it); null before. */
  readyMs: number | null;
  reason?: string;
}

/** A progress event: every clone state change goes through here (the NDJSON stream of `deploy --json`). */
export interface FleetEvent {
  type: string;
  [key: string]: unknown;
}

/**
 * Supervisor timings; the defaults follow kamal-proxy and PM2 (see docs/fleet.md).
 *
 * @example
 *   new Supervisor({ ...supervisorDefaults, readyTimeout: 5000, paths, balancer, env, logger, ... });
 */
export interface SupervisorTimings {
  readyTimeout: number;
  stopGrace: number;
  drainTimeout: number;
  initialBackoff: number;
  backoffFactor: number;
  maxBackoff: number;
  crashLoopExits: number;
  crashLoopWindow: number;
  stableAfter: number;
}

export const supervisorDefaults: Readonly<SupervisorTimings> = Object.freeze({
  /** A new clone must answer GET /up with 200 within this, or it fails its health gate. */
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
  balancer: Balancer;
  /** Environment every clone gets (SESSION_STORE, SESSION_SECRET, ...), on top of PORT and the CLONES_* ids. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** The release a crashed clone is replaced with: the current desired one, never an older one. */
  releaseFor: (clone: CloneInfo) => string;
  onEvent?: (event: FleetEvent) => void;
}

const LOG_LINES = 20;

class Clone {
  readonly id: string;
  release: string;
  group: string;
  port = 0;
  child: ChildProcess | undefined;
  state: CloneState = 'starting';
  restarts = 0;
  exits: number[] = [];
  backoff = 0;
  startedAt = Date.now();
  readyMs: number | null = null;
  reason: string | undefined;
  stopping = false;
  registered = false;
  lines: string[] = [];
  log: WriteStream | undefined;

  constructor(id: string, release: string) {
    this.id = id;
    this.release = release;
    this.group = groupOf(release);
  }

  info(): CloneInfo {
    return {
      id: this.id,
      release: this.release,
      group: this.group,
      port: this.port,
      pid: this.child?.pid ?? null,
      state: this.state,
      restarts: this.restarts,
      startedAt: new Date(this.startedAt).toISOString(),
      readyMs: this.readyMs,
      ...(this.reason ? { reason: this.reason } : {}),
    };
  }
}

/** The balancer group of a release: its first 12 hex digits. */
export const groupOf = (release: string): string => release.slice(0, 12);

/**
 * Starts, watches and stops clone processes. A clone is ready when its process is up and GET /up answers
 * 200; only then is it added to the balancer. A clone that exits is taken out of the balancer at once and
 * restarted, from the current desired release, with backoff; 10 exits in a minute mark it failed.
 *
 * @example
 *   const sup = new Supervisor({ paths, balancer, env, logger, releaseFor: () => desired.release });
 *   const clone = await sup.start(release);
 *   await sup.stop(clone.id);
 */
export class Supervisor {
  readonly #o: Required<Omit<SupervisorOptions, 'onEvent'>> & Pick<SupervisorOptions, 'onEvent'>;
  readonly #clones = new Map<string, Clone>();
  #next = 1;
  #closed = false;

  constructor(options: SupervisorOptions) {
    this.#o = { ...supervisorDefaults, ...options };
    mkdirSync(options.paths.logs, { recursive: true });
  }

  list(): CloneInfo[] {
    return [...this.#clones.values()].map((c) => c.info());
  }

  /** Starts one clone of `release` and resolves once it serves behind the balancer; rejects when its gate fails. */
  async start(release: string): Promise<CloneInfo> {
    const clone = new Clone(`c${this.#next++}`, release);
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
    await Promise.all([...this.#clones.keys()].map((id) => this.stop(id, drainTimeout)));
  }

  async #boot(clone: Clone): Promise<void> {
    const o = this.#o;
    const deadline = Date.now() + o.readyTimeout;
    for (;;) {
      clone.port = await freePort();
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
        return this.#fail(clone, `GET /up did not answer 200 within ${o.readyTimeout} ms`);
      }
      if (this.#crashLooping(clone)) return this.#fail(clone, this.#crashLoopReason());
      if (Date.now() + clone.backoff > deadline)
        return this.#fail(clone, `exited before it was ready (${result})`);
      clone.state = 'backoff';
      await sleep(clone.backoff);
    }
    await this.#register(clone, deadline);
    clone.state = 'serving';
    clone.readyMs = Date.now() - clone.startedAt;
    this.#emit({
      type: 'clone',
      clone: clone.id,
      release: clone.release,
      state: 'serving',
      port: clone.port,
    });
  }

  #fail(clone: Clone, why: string): never {
    clone.state = 'failed';
    const tail = clone.lines.slice(-5).join('\n');
    clone.reason = why;
    this.#emit({ type: 'clone', clone: clone.id, release: clone.release, state: 'failed', reason: why });
    throw cloneFailed(clone.id, tail ? `${why}; last log lines:\n${tail}` : why);
  }

  #spawn(clone: Clone): ChildProcess {
    const release = readRelease(this.#o.paths, clone.release);
    const entry = join(release.dir, release.manifest.entry);
    // A TypeScript app runs through tsx (the app's own, else clones's), and takes clones's own TypeScript
    // sources (the `clones-source` export condition); a JavaScript app takes the compiled dist/.
    const args = /\.[cm]?ts$/.test(entry)
      ? [
          '--conditions=clones-source',
          '--import',
          tsxLoader(release.manifest.entry, [release.dir, release.manifest.source]),
          entry,
        ]
      : [entry];
    clone.log ??= createWriteStream(join(this.#o.paths.logs, `${clone.id}.log`), { flags: 'a' });
    const child = spawn(process.execPath, args, {
      cwd: release.dir,
      env: {
        ...this.#o.env,
        // The release's declared env wins over the host's: it is part of what was deployed (and its digest).
        ...release.manifest.env,
        PORT: String(clone.port),
        HOST: '127.0.0.1',
        CLONES_CLONE_ID: clone.id,
        CLONES_RELEASE: clone.release,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    clone.child = child;
    const collect = (chunk: Buffer) => {
      clone.log?.write(chunk);
      const lines = chunk.toString('utf8').split('\n').filter(Boolean);
      clone.lines = [...clone.lines, ...lines].slice(-LOG_LINES);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code, signal) => this.#onExit(clone, child, code, signal));
    return child;
  }

  async #waitReady(clone: Clone, child: ChildProcess, deadline: number): Promise<string> {
    for (;;) {
      if (clone.stopping) return 'stopped';
      if (child.exitCode !== null || child.signalCode !== null)
        return `exit code ${child.exitCode ?? child.signalCode}`;
      if (await probeUp(clone.port)) return 'ready';
      if (Date.now() > deadline) return 'timeout';
      await sleep(100);
    }
  }

  async #register(clone: Clone, deadline: number): Promise<void> {
    const balancer = this.#o.balancer;
    balancer.addTarget({
      id: clone.id,
      url: `http://127.0.0.1:${clone.port}`,
      group: clone.group,
      release: clone.release,
    });
    clone.registered = true;
    // The balancer runs its own checks; wait until it counts the clone healthy so callers can rely on it.
    while (Date.now() < deadline + 5000) {
      const t = balancer.state().targets.find((x) => x.id === clone.id);
      if (t?.health === 'healthy') return;
      await sleep(25);
    }
  }

  async #unregister(clone: Clone, drainTimeout: number): Promise<void> {
    if (!clone.registered) return;
    clone.registered = false;
    try {
      await this.#o.balancer.removeTarget(clone.id, { deadline: drainTimeout });
    } catch (err) {
      this.#o.logger.warn({ err, clone: clone.id }, 'removing target failed');
    }
  }

  async #terminate(clone: Clone, grace = this.#o.stopGrace): Promise<void> {
    const child = clone.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(grace === 0 ? 'SIGKILL' : 'SIGTERM');
    const late = await Promise.race([exited.then(() => false), sleep(grace, true)]);
    if (late) {
      this.#o.logger.warn({ clone: clone.id, pid: child.pid }, 'clone ignored SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
      await exited;
    }
  }

  #onExit(clone: Clone, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (clone.child !== child || clone.stopping) return;
    const now = Date.now();
    clone.exits = [...clone.exits.filter((t) => now - t < this.#o.crashLoopWindow), now];
    const uptime = now - clone.startedAt;
    clone.backoff =
      clone.backoff === 0 || uptime > this.#o.stableAfter
        ? this.#o.initialBackoff
        : Math.min(clone.backoff * this.#o.backoffFactor, this.#o.maxBackoff);
    if (clone.state !== 'serving') return; // #boot is watching it.
    this.#o.logger.warn({ clone: clone.id, code, signal }, 'clone exited');
    this.#emit({ type: 'clone', clone: clone.id, release: clone.release, state: 'exited', code, signal });
    void this.#recover(clone);
  }

  async #recover(clone: Clone): Promise<void> {
    await this.#unregister(clone, 0);
    if (this.#crashLooping(clone)) {
      clone.state = 'failed';
      clone.reason = this.#crashLoopReason();
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

  #crashLooping(clone: Clone): boolean {
    return clone.exits.length >= this.#o.crashLoopExits;
  }

  #crashLoopReason(): string {
    return `crash loop: ${this.#o.crashLoopExits} exits within ${this.#o.crashLoopWindow / 1000} s`;
  }

  #emit(event: FleetEvent): void {
    this.#o.onEvent?.({ ...event, at: new Date().toISOString() });
  }
}

/** GET /up on a fresh connection; true on 200. */
export function probeUp(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/up',
        agent: false,
        timeout: timeoutMs,
        headers: { connection: 'close' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A loopback port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
