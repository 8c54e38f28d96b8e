import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/index.ts';
import type { AgentClient } from './agent-client.ts';
import { type CloneInfo, groupOf } from './clone-info.ts';
import type { Emit } from './fleet-event.ts';
import type { FleetHost } from './host-config.ts';
import type { CloneDriver } from './rollout/rollout-context.ts';

/** A clone of a fleet that spans hosts: its id is `<host>:<id on the host>`. */
export type HostCloneInfo = CloneInfo & { host: string };

/**
 * The clones of one host, as the control machine drives them: through the host's agent, with the control
 * machine's balancer in front. `start` asks the agent for a clone, then adds it to the balancer (target
 * `bind:port`) and waits until the balancer counts it healthy; `stop` drains it in the balancer first, then
 * asks the agent to stop it. `sync` folds the agent's own view in (a clone it restarted on a new port).
 *
 * @example
 *   const h = new HostClones(host, agent, balancer, { drainTimeout: 30_000, logger, emit });
 *   await h.sync(() => true);
 *   await rolling({ clones: h, want: new Map([[release, 2]]), guard, weigh });
 */
export class HostClones implements CloneDriver {
  readonly host: FleetHost;
  readonly agent: AgentClient;
  /** Reachable at the last sync. */
  reachable = false;
  /** Its clones may be in the balancer: it runs the fleet's release (a late host only after catching up). */
  inService = false;
  readonly #balancer: Balancer;
  readonly #o: { drainTimeout: number; readyTimeout: number; logger: Logger; emit: Emit };
  #clones = new Map<string, CloneInfo>();
  /** Agent clone id -> the port it was registered with. */
  #registered = new Map<string, number>();
  /** Clones being stopped: a sync must not add them back while they drain. */
  #stopping = new Set<string>();
  /** Clones stopped here that an agent answer may still list; forgotten once the agent no longer does. */
  #gone = new Set<string>();

  constructor(
    host: FleetHost,
    agent: AgentClient,
    balancer: Balancer,
    o: { drainTimeout: number; readyTimeout: number; logger: Logger; emit: Emit },
  ) {
    this.host = host;
    this.agent = agent;
    this.#balancer = balancer;
    this.#o = o;
  }

  targetId(id: string): string {
    return `${this.host.name}:${id}`;
  }

  #local(id: string): string {
    return id.startsWith(`${this.host.name}:`) ? id.slice(this.host.name.length + 1) : id;
  }

  list(): HostCloneInfo[] {
    return [...this.#clones.values()].map((c) => ({ ...c, id: this.targetId(c.id), host: this.host.name }));
  }

  async start(release: string): Promise<HostCloneInfo> {
    const info = await this.agent.startClone(release, this.#o.readyTimeout + 30_000);
    this.#clones.set(info.id, info);
    await this.#register(info, true);
    this.#o.emit({
      type: 'clone',
      host: this.host.name,
      clone: this.targetId(info.id),
      release,
      state: 'serving',
      port: info.port,
    });
    return { ...info, id: this.targetId(info.id), host: this.host.name };
  }

  async stop(id: string, drainTimeout = this.#o.drainTimeout): Promise<void> {
    const local = this.#local(id);
    const clone = this.#clones.get(local);
    const release = clone?.release ?? '';
    this.#o.emit({
      type: 'clone',
      host: this.host.name,
      clone: this.targetId(local),
      release,
      state: 'draining',
    });
    this.#stopping.add(local);
    try {
      await this.#unregister(local, drainTimeout);
      await this.agent.stopClone(local);
      this.#clones.delete(local);
      this.#gone.add(local);
    } finally {
      this.#stopping.delete(local);
    }
    this.#o.emit({
      type: 'clone',
      host: this.host.name,
      clone: this.targetId(local),
      release,
      state: 'stopped',
    });
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#clones.keys()].map((id) => this.stop(id, 0)));
  }

  /**
   * Reads the agent's clones; while the host is in service, adds its serving clones of `allowed` releases to
   * the balancer and takes out the ones that are gone or moved to another port. Returns false (and changes
   * nothing) when the agent does not answer: the balancer's health checks decide about its clones then.
   */
  async sync(allowed: (release: string) => boolean): Promise<boolean> {
    let status: Awaited<ReturnType<AgentClient['status']>>;
    try {
      status = await this.agent.status(2000);
    } catch {
      this.reachable = false;
      return false;
    }
    this.reachable = true;
    // A clone this side stopped (or is stopping) may still be listed by an answer sent before it went.
    const listed = status.clones.filter(
      (c) =>
        c.state !== 'draining' && c.state !== 'stopped' && !this.#stopping.has(c.id) && !this.#gone.has(c.id),
    );
    for (const id of this.#gone) if (!status.clones.some((c) => c.id === id)) this.#gone.delete(id);
    this.#clones = new Map(listed.map((c) => [c.id, c]));
    for (const [id, port] of this.#registered) {
      const c = this.#clones.get(id);
      if (!c || c.port !== port || c.state !== 'serving' || !this.inService) await this.#unregister(id, 0);
    }
    if (this.inService) {
      for (const c of this.#clones.values()) {
        if (c.state !== 'serving' || !allowed(c.release) || this.#stopping.has(c.id)) continue;
        if (!this.#registered.has(c.id)) await this.#register(c, false);
      }
    }
    return true;
  }

  /** The host's release (most of its clones') and clone count, as last seen. */
  summary(): { release: string | null; clones: number } {
    const counts = new Map<string, number>();
    for (const c of this.#clones.values()) counts.set(c.release, (counts.get(c.release) ?? 0) + 1);
    const release = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
    return { release, clones: this.#clones.size };
  }

  /** Takes every clone of this host out of the balancer (the host left service). */
  async unregisterAll(): Promise<void> {
    this.inService = false;
    await Promise.all([...this.#registered.keys()].map((id) => this.#unregister(id, 0)));
  }

  async #register(c: CloneInfo, wait: boolean): Promise<void> {
    const id = this.targetId(c.id);
    if (!this.#registered.has(c.id)) {
      this.#balancer.addTarget({
        id,
        url: `http://${this.host.bind}:${c.port}`,
        group: groupOf(c.release),
        release: c.release,
      });
      this.#registered.set(c.id, c.port);
    }
    if (!wait) return;
    // The balancer runs its own checks across the network; callers rely on the clone counting as healthy.
    const deadline = Date.now() + this.#o.readyTimeout;
    while (Date.now() < deadline) {
      if (this.#balancer.target(id)?.health === 'healthy') return;
      await sleep(25);
    }
  }

  async #unregister(id: string, drainTimeout: number): Promise<void> {
    if (!this.#registered.has(id)) return;
    this.#registered.delete(id);
    try {
      await this.#balancer.removeTarget(this.targetId(id), { deadline: drainTimeout });
    } catch (err) {
      this.#o.logger.warn({ err, clone: this.targetId(id) }, 'removing target failed');
    }
  }
}
