import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/index.ts';
import { agentUnavailable } from '../errors.ts';
import { AgentClient } from './agent-client.ts';
import { clonesOn, type DesiredState } from './desired-state.ts';
import type { Emit } from './fleet-event.ts';
import type { FleetPaths } from './fleet-paths.ts';
import { type HostCloneInfo, HostClones } from './host-clones.ts';
import { type FleetHost, type HostsConfig, hostFromFlag } from './host-config.ts';
import { hostRoot, setupHost, shipRelease } from './host-setup.ts';
import { type HostsFileChange, saveHostsChange } from './hosts-file.ts';
import { stageInstall } from './install-tree.ts';
import type { LogsQuery } from './log-stream.ts';
import type { SshTransport } from './ssh-transport.ts';

/** One host as `clones status` and `clones hosts` show it. */
export interface HostInfo {
  name: string;
  address: string;
  bind: string;
  reachable: boolean;
  inService: boolean;
  /** The release the host's agent holds as desired (what it boots from). */
  release: string | null;
  clones: number;
  /** The clones of the desired release it should run (its own count, or the fleet's). */
  clonesWanted: number;
}

export interface FleetHostsOptions {
  config: HostsConfig;
  ssh: SshTransport;
  paths: FleetPaths;
  balancer: Balancer;
  logger: Logger;
  /** Tokens by host name (from setup). */
  tokens: Record<string, string>;
  /** Environment every clone gets on every host (SESSION_STORE, SESSION_SECRET...). */
  env: Record<string, string>;
  drainTimeout: number;
  readyTimeout: number;
  /** The path the hosts' agents check their clones on before they serve (the fleet's `healthPath`). */
  healthPath: string;
  emit: Emit;
  /**
   * The app's clones.json, where `hosts add|remove` are written so that the next `clones up` keeps them;
   * undefined when the hosts came from `--host` flags (which replace the file's list).
   */
  configFile?: string | undefined;
}

/**
 * The hosts of a fleet, from the control machine: one HostClones per host (its agent, its targets in the
 * balancer), shipping releases over SSH, and the catch-up of a host that is not in service yet (it joined
 * late, or was skipped while unreachable): it gets the desired release, converges on its own, and only then
 * are its clones added to the balancer.
 *
 * @example
 *   const hosts = new FleetHosts({ config, ssh, paths, balancer, logger, tokens, env, ... });
 *   await hosts.ship([release], { skipUnreachable: false });
 */
export class FleetHosts {
  readonly parts: HostClones[];
  readonly #o: FleetHostsOptions;
  readonly #roots = new Map<string, string>();

  constructor(o: FleetHostsOptions) {
    this.#o = o;
    this.parts = o.config.hosts.map((h) => this.#part(h));
  }

  #part(h: FleetHost): HostClones {
    const token = this.#o.tokens[h.name] ?? '';
    const agent = new AgentClient({ host: h.name, address: h.bind, port: h.agentPort, token });
    return new HostClones(h, agent, this.#o.balancer, {
      drainTimeout: this.#o.drainTimeout,
      readyTimeout: this.#o.readyTimeout,
      logger: this.#o.logger,
      emit: this.#o.emit,
    });
  }

  /** Adds a host (after its setup); it is caught up before it serves. */
  add(h: FleetHost, token: string): HostClones {
    this.#o.tokens[h.name] = token;
    const part = this.#part(h);
    this.parts.push(part);
    return part;
  }

  /** Sets a new host up over SSH (`user@address[:port]`) and adds it; the poll catches it up. */
  async setupAndAdd(flag: string, clones: number, emit: Emit): Promise<HostClones> {
    const h = hostFromFlag(flag, this.#o.config, clones);
    if (this.parts.some((p) => p.host.name === h.name))
      return this.parts.find((p) => p.host.name === h.name)!;
    const done = await setupHost(this.#o.ssh, h, {
      paths: this.#o.paths,
      installDir: stageInstall(this.#o.paths),
      emit,
    });
    const part = this.add(h, done.agent.endpoint.token);
    this.#save(h.name, { add: h }, emit);
    return part;
  }

  /** Writes a host added or removed into clones.json (see hosts-file.ts), and says so. */
  #save(host: string, change: HostsFileChange, emit: Emit): void {
    const file = this.#o.configFile;
    if (!file) {
      emit({
        type: 'host',
        host,
        step: 'save',
        outcome: 'skipped',
        detail: 'the hosts came from --host flags: change them on the next "clones up" too',
      });
      return;
    }
    const verb = 'add' in change ? 'added to' : 'removed from';
    try {
      const changed = saveHostsChange(file, change);
      emit({
        type: 'host',
        host,
        step: 'save',
        outcome: changed ? 'changed' : 'ok',
        detail: changed ? `${verb} ${file}` : `${file} already says so`,
      });
    } catch (err) {
      this.#o.logger.warn({ err, file }, 'writing the hosts into clones.json failed');
      emit({
        type: 'host',
        host,
        step: 'save',
        outcome: 'failed',
        detail: `not ${verb} ${file}: ${(err as Error).message}; the next "clones up" will not know`,
      });
    }
  }

  /** The last lines of every clone's log on every host (or of one clone, `host:id`), each `host:clone line`. */
  async logs(clone: string | undefined, lines: number, since?: number): Promise<string> {
    const out: string[] = [];
    for (const p of this.parts) {
      const prefix = `${p.host.name}:`;
      if (clone && !clone.startsWith(prefix)) continue;
      const text = await p.agent
        .logs(clone?.slice(prefix.length), lines, since)
        .catch((err: Error) => `(${err.message})\n`);
      for (const line of text.split('\n').filter(Boolean)) out.push(`${prefix}${line}`);
    }
    return out.length > 0 ? `${out.join('\n')}\n` : '';
  }

  /**
   * `clones logs -f` across hosts: the last lines of every host's clones, then their new lines as each
   * agent streams them, each `host:clone line`, until `signal` aborts. A host added meanwhile is followed
   * too. A host whose agent cannot be reached, or whose stream breaks, gets one `host:- (...)` line and is
   * tried again every 2 s; after a reconnect only new lines come (lines written while it was away are not
   * sent again: read them with `clones logs --since`).
   */
  async followLogs(
    q: Omit<LogsQuery, 'follow'>,
    write: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const following = new Map<HostClones, Promise<void>>();
    const follow = async (p: HostClones) => {
      const prefix = `${p.host.name}:`;
      let first = { lines: q.lines, since: q.since };
      let broken = false;
      while (!signal.aborted && this.parts.includes(p)) {
        try {
          await p.agent.followLogs(
            { clone: q.clone?.slice(prefix.length), ...first },
            (line) => {
              broken = false;
              write(`${prefix}${line}\n`);
            },
            signal,
          );
        } catch (err) {
          if (!broken) write(`${prefix}- (${(err as Error).message}; trying again)\n`);
          broken = true;
        }
        first = { lines: 0, since: undefined };
        if (!signal.aborted) await sleep(2000, undefined, { signal }).catch(() => {});
      }
    };
    while (!signal.aborted) {
      for (const p of this.parts) {
        if (following.has(p) || (q.clone && !q.clone.startsWith(`${p.host.name}:`))) continue;
        following.set(p, follow(p));
      }
      await sleep(1000, undefined, { signal }).catch(() => {});
    }
    await Promise.all(following.values());
  }

  /** Removes a host: its clones leave the balancer and stop; clones.json no longer lists it. */
  async remove(name: string, emit: Emit = this.#o.emit): Promise<void> {
    const i = this.parts.findIndex((p) => p.host.name === name);
    if (i < 0) return;
    const [part] = this.parts.splice(i, 1);
    await part!.unregisterAll();
    await part!.stopAll().catch(() => {});
    this.#save(name, { remove: name }, emit);
  }

  inService(): HostClones[] {
    return this.parts.filter((p) => p.inService);
  }

  list(): HostCloneInfo[] {
    return this.inService().flatMap((p) => p.list());
  }

  /** Every host's agent view; `allowed` releases of in-service hosts go into the balancer. */
  async syncAll(allowed: (release: string) => boolean): Promise<void> {
    await Promise.all(this.parts.map((p) => p.sync(allowed)));
  }

  /**
   * Makes sure every in-service host can run `releases`: ships what it lacks. An unreachable host fails the
   * deploy (naming the host and the step), or with `skipUnreachable` leaves service (its clones leave the
   * balancer) and is caught up when it returns.
   */
  async ship(releases: readonly string[], o: { skipUnreachable: boolean }): Promise<void> {
    await this.syncAll(() => false);
    for (const p of this.inService()) {
      if (p.reachable) continue;
      if (!o.skipUnreachable)
        throw agentUnavailable(
          p.host.name,
          'deploy: reach the agent',
          `${p.host.bind}:${p.host.agentPort} does not answer (use --skip-unreachable to deploy without it)`,
        );
      this.#o.logger.warn({ host: p.host.name }, 'host unreachable: skipped; it catches up when it returns');
      this.#o.emit({
        type: 'host',
        host: p.host.name,
        step: 'deploy',
        outcome: 'skipped',
        detail: 'unreachable',
      });
      await p.unregisterAll();
    }
    const results = await this.#o.ssh.eachHost(
      this.inService().map((p) => p.host),
      (h) => this.shipTo(h as FleetHost, releases),
    );
    const failed = results.find((r) => !r.ok);
    if (failed && !failed.ok) throw failed.error;
  }

  /** Ships releases to one host; returns bytes sent. */
  async shipTo(h: FleetHost, releases: readonly string[]): Promise<number> {
    let root = this.#roots.get(h.name);
    if (!root) {
      root = await hostRoot(this.#o.ssh, h);
      this.#roots.set(h.name, root);
    }
    let bytes = 0;
    for (const release of releases) {
      const r = await shipRelease(this.#o.ssh, h, root, this.#o.paths, release);
      bytes += r.sentBytes;
      if (!r.already)
        this.#o.emit({
          type: 'host',
          host: h.name,
          step: `ship ${release.slice(0, 12)}`,
          outcome: 'changed',
          bytes: r.sentBytes,
        });
    }
    return bytes;
  }

  /**
   * Records the desired state on every in-service host (what its agent boots from and restarts with). The
   * canary goes with it, so that the agent restarts a crashed canary clone as the canary.
   */
  async record(state: DesiredState, wantFor: (p: HostClones) => ReadonlyMap<string, number>): Promise<void> {
    await Promise.all(
      this.inService().map((p) => {
        const want = wantFor(p);
        const canary = state.canary
          ? {
              release: state.canary.release,
              clones: state.canary.release === state.release ? 0 : (want.get(state.canary.release) ?? 0),
            }
          : undefined;
        return p.agent.setDesired({
          release: state.release,
          epoch: state.epoch,
          clones: want.get(state.release) ?? clonesOn(state, p.host.name),
          ...(canary ? { canary } : {}),
          env: this.#o.env,
          healthPath: this.#o.healthPath,
          readyTimeout: this.#o.readyTimeout,
        });
      }),
    );
  }

  /**
   * The machine-image step for hosts not in service: a reachable one gets the desired release shipped, its
   * agent converges to it on its own (its clones are in no balancer yet), and only then does it enter
   * service, its clones registered. Returns the hosts that joined.
   */
  async catchUp(state: DesiredState | undefined, allowed: (release: string) => boolean): Promise<string[]> {
    if (!state) return [];
    const joined: string[] = [];
    for (const p of this.parts) {
      if (p.inService || !(await p.sync(() => false))) continue;
      try {
        this.#o.emit({
          type: 'host',
          host: p.host.name,
          step: 'catch up',
          outcome: 'changed',
          detail: `to ${state.release.slice(0, 12)}`,
        });
        await this.shipTo(p.host, [state.release]);
        await p.agent.setDesired(
          {
            release: state.release,
            epoch: state.epoch,
            clones: clonesOn(state, p.host.name),
            env: this.#o.env,
            healthPath: this.#o.healthPath,
            readyTimeout: this.#o.readyTimeout,
            converge: true,
          },
          300_000,
        );
        p.inService = true;
        await p.sync(allowed);
        this.#o.emit({
          type: 'host',
          host: p.host.name,
          step: 'catch up',
          outcome: 'ok',
          detail: 'in service',
        });
        joined.push(p.host.name);
      } catch (err) {
        this.#o.logger.warn(
          { host: p.host.name, err: (err as Error).message },
          'catch-up failed; retrying later',
        );
      }
    }
    return joined;
  }

  /** Every host as last seen (the poll runs every second), with what `state` wants of it. */
  info(state: DesiredState | undefined): HostInfo[] {
    return this.parts.map((p) => ({
      clonesWanted: state ? clonesOn(state, p.host.name) : 0,
      name: p.host.name,
      address: p.host.address,
      bind: p.host.bind,
      reachable: p.reachable,
      inService: p.inService,
      ...p.summary(),
    }));
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stopAll().catch(() => {})));
  }
}
