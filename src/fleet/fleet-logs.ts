import { basename } from 'node:path';
import type { FleetHosts } from './fleet-hosts.ts';
import { BALANCER_LOG, type FleetPaths } from './fleet-paths.ts';
import { followLogs, readLogLines } from './log-reader.ts';
import type { LogsQuery } from './log-stream.ts';
import type { Supervisor } from './supervisor.ts';

/**
 * `clones logs` of a fleet: the clones' logs on this machine (or, across hosts, every host's through its
 * agent, `host:clone` prefixed), and the balancer's access log (`clones logs balancer`), which is always on
 * this machine.
 *
 * @example
 *   const logs = new FleetLogs(paths, supervisor, hosts);
 *   process.stdout.write(await logs.read('c1', 100));
 */
export class FleetLogs {
  readonly #paths: FleetPaths;
  readonly #supervisor: Supervisor;
  readonly #hosts: FleetHosts | undefined;

  constructor(paths: FleetPaths, supervisor: Supervisor, hosts: FleetHosts | undefined) {
    this.#paths = paths;
    this.#supervisor = supervisor;
    this.#hosts = hosts;
  }

  /** The last `lines` lines of the clones' logs (every host's), or of one clone; `since` leaves older out. */
  async read(clone: string | undefined, lines: number, since?: number): Promise<string> {
    if (clone === 'balancer') return this.#balancerLog(lines, since);
    if (this.#hosts) return this.#hosts.logs(clone, lines, since);
    return this.#localIds(clone)
      .flatMap((id) => readLogLines(this.#paths.logs, id, { lines, since }).map((l) => `${id} ${l.text}\n`))
      .join('');
  }

  /**
   * `clones logs -f`: the last lines, then every new line (`<clone> <line>`, `host:clone` across hosts)
   * until `signal` aborts; clones that start later are followed too.
   */
  async follow(
    q: Omit<LogsQuery, 'follow'>,
    write: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#hosts && q.clone !== 'balancer') return this.#hosts.followLogs(q, write, signal);
    write(await this.read(q.clone, q.lines, q.since));
    await followLogs(
      this.#paths.logs,
      () => (q.clone === 'balancer' ? [BALANCER_LOG] : this.#localIds(q.clone)),
      (l) => write(`${l.clone === BALANCER_LOG ? 'balancer' : l.clone} ${l.text}\n`),
      signal,
    );
  }

  /** `clones logs balancer`: the balancer's access log (`--access-log`), on this machine. */
  #balancerLog(lines: number, since?: number): string {
    return readLogLines(this.#paths.logs, BALANCER_LOG, { lines, since })
      .map((l) => `balancer ${l.text}\n`)
      .join('');
  }

  #localIds(clone: string | undefined): string[] {
    return clone ? [basename(clone)] : this.#supervisor.list().map((c) => c.id);
  }
}
