import { readFileSync, writeFileSync } from 'node:fs';
import { backendOf, type HaproxyFiles } from './haproxy-config.ts';
import type { HaproxyEntry, HaproxyModel } from './haproxy-model.ts';
import { parseStat, runtimeChange, runtimeCommand, runtimeQuery } from './runtime-api.ts';

/**
 * Every change the haproxy engine makes to a running HAProxy without a reload, and every read back from it,
 * through the runtime API on the worker's stats socket: server admin states, the groups map, certificates,
 * health and in-flight counts. The engine decides when; this module knows the commands.
 *
 * @example
 *   const runtime = new HaproxyRuntime(haproxyFiles(dir), model);
 *   await runtime.setServerState(entry, 'maint');
 *   await runtime.readStats(); // entry.health and entry.inFlight as HAProxy sees them
 */
export class HaproxyRuntime {
  readonly #files: HaproxyFiles;
  readonly #model: HaproxyModel;

  constructor(files: HaproxyFiles, model: HaproxyModel) {
    this.#files = files;
    this.#model = model;
  }

  /** Keeps HAProxy's view of each surviving server (health, weight, drain) across the reload, and nothing else (F7). */
  async saveServerState(): Promise<void> {
    const text = await runtimeCommand(this.#files.stats, 'show servers state');
    const lines = text.split('\n');
    const kept = lines.filter((line, i) => {
      if (i < 2 || line.trim() === '' || line.startsWith('#')) return i < 2 && line.trim() !== '';
      const cols = line.split(' ');
      const e = this.#model.entries.get(cols[3] ?? '');
      return (
        e !== undefined && backendOf(e.group) === cols[1] && cols[4] === e.host && cols[18] === String(e.port)
      );
    });
    writeFileSync(this.#files.state, `${kept.join('\n')}\n`, { mode: 0o600 });
  }

  /** Reads health and in-flight requests back from `show stat` into the model's entries. */
  async readStats(): Promise<void> {
    const rows = parseStat(await runtimeQuery(this.#files.stats, 'show stat', 3000));
    for (const row of rows) {
      const e = this.#model.entries.get(row.svname ?? '');
      if (e === undefined || backendOf(e.group) !== row.pxname) continue;
      e.inFlight = Number(row.scur ?? 0);
      const status = row.status ?? '';
      if (status.startsWith('UP') || status === 'no check' || status === 'DRAIN') e.health = 'healthy';
      else if (status.startsWith('DOWN')) e.health = 'unhealthy';
    }
  }

  /** `ready` or `maint` (no new request reaches it and a sticky client is re-pinned). */
  setServerState(e: HaproxyEntry, state: 'ready' | 'maint'): Promise<void> {
    return runtimeChange(this.#files.stats, `set server ${backendOf(e.group)}/${e.id} state ${state}`);
  }

  /** Cuts what a server still has in flight (a drain whose deadline passed). */
  shutdownSessions(e: HaproxyEntry): Promise<void> {
    return runtimeChange(this.#files.stats, `shutdown sessions server ${backendOf(e.group)}/${e.id}`);
  }

  /** A canary step: the map changes in the running worker (and on disk, for the next reload), no reload. */
  async setGroupWeights(weights: Record<string, number>): Promise<void> {
    this.#writeGroupsMap();
    for (const [name, weight] of Object.entries(weights))
      await runtimeChange(this.#files.stats, `set map ${this.#files.groups} ${name} ${weight}`);
  }

  /** The group stickiness duration, in the running worker and on disk. */
  async setGroupDuration(): Promise<void> {
    this.#writeGroupsMap();
    await runtimeChange(
      this.#files.stats,
      `set map ${this.#files.groups} @duration ${Math.floor(this.#model.groupDuration / 1000)}`,
    );
  }

  /** New handshakes get the certificate now in `file`; open connections keep theirs. */
  async updateCertificate(file: string): Promise<void> {
    await runtimeChange(this.#files.stats, `set ssl cert ${file} <<\n${readFileSync(file, 'utf8')}\n`);
    await runtimeChange(this.#files.stats, `commit ssl cert ${file}`);
  }

  /** Stops accepting new connections; what is in flight goes on. */
  disableFrontend(): Promise<void> {
    return runtimeChange(this.#files.stats, 'disable frontend clones_web');
  }

  #writeGroupsMap(): void {
    writeFileSync(this.#files.groups, this.#model.groupsMap(), { mode: 0o600 });
  }
}
