import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { haproxyFailed, haproxyMissing } from '../../../errors.ts';
import { ACCESS_MARK, haproxyFiles } from './haproxy-config.ts';
import { runtimeCommand } from './runtime-api.ts';

/** Where Debian and most builds put haproxy; PATH is searched first. */
const CANDIDATES = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy', '/usr/bin/haproxy'];

/**
 * The haproxy binary, or `CLONES_HAPROXY_MISSING` with the install command.
 *
 * @example
 *   const bin = findHaproxy(); // '/usr/sbin/haproxy'
 */
export function findHaproxy(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(`${dir}/haproxy`)) return `${dir}/haproxy`;
  }
  const found = CANDIDATES.find((path) => existsSync(path));
  if (found === undefined) throw haproxyMissing();
  return found;
}

/**
 * One haproxy in master-worker mode (`-W`, master CLI on `master.sock` mode 0600), run as a child of this
 * process. Configs are checked with `haproxy -c` before every start and reload; a reload is seamless (the
 * listening sockets pass to the new worker, `option idle-close-on-response` lets keep-alive clients go
 * without a reset). An exit nobody asked for is reported through `onExit`, so the owner can start it again.
 *
 * @example
 *   const proc = new HaproxyProcess(dir, logger, (code) => restart());
 *   await proc.check(files.next);
 *   await proc.start();
 *   await proc.reload();
 */
export class HaproxyProcess {
  readonly #bin: string;
  readonly #files: ReturnType<typeof haproxyFiles>;
  readonly #logger: Logger;
  readonly #onAccess: ((line: string) => void) | undefined;
  readonly #onExit: (code: number | null, signal: string | null) => void;
  #child: ChildProcess | undefined;
  #stopping = false;

  constructor(
    dir: string,
    logger: Logger,
    onExit: (code: number | null, signal: string | null) => void,
    onAccess?: (line: string) => void,
  ) {
    this.#bin = findHaproxy();
    this.#files = haproxyFiles(dir);
    this.#logger = logger;
    this.#onExit = onExit;
    this.#onAccess = onAccess;
  }

  /** The master's pid while it runs. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  /** `haproxy -c`: rejects with `CLONES_HAPROXY_FAILED` and HAProxy's own message when the file is bad. */
  check(configPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.#bin, ['-c', '-f', configPath], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (!err) return resolve();
        const text = `${stderr}${stdout}`.split('\n').filter((l) => /ALERT|error/i.test(l));
        reject(haproxyFailed('config check (haproxy -c)', text.slice(0, 3).join(' | ') || err.message));
      });
    });
  }

  /** Starts the master and waits until its worker answers on the stats socket. */
  async start(): Promise<void> {
    this.#stopping = false;
    await this.#stopLeftover();
    const child = spawn(
      this.#bin,
      ['-W', '-S', `${this.#files.master},mode,600`, '-p', this.#files.pid, '-f', this.#files.config],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#child = child;
    // haproxy must not outlive this process (a test that times out, a Ctrl-C): stop it on our exit.
    const orphan = () => child.kill('SIGTERM');
    process.once('exit', orphan);
    child.once('exit', () => process.off('exit', orphan));
    let early = '';
    let partial = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        // The access log (log-format of haproxy-config.ts) comes on stderr too, marked.
        if (line.startsWith(ACCESS_MARK)) {
          this.#onAccess?.(line.slice(ACCESS_MARK.length));
          continue;
        }
        if (early.length < 2000) early += `${line}\n`;
        if (/\[ALERT\]/.test(line)) this.#logger.error({ haproxy: line }, 'haproxy alert');
        else if (line.trim() !== '') this.#logger.debug({ haproxy: line }, 'haproxy');
      }
    });
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (!this.#stopping) this.#onExit(code, signal);
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw haproxyFailed(
          'start',
          early.trim().split('\n').slice(-3).join(' | ') || `exit ${child.exitCode}`,
        );
      const pid = await this.workerPid().catch(() => undefined);
      if (pid !== undefined) return;
      if (Date.now() > deadline) throw haproxyFailed('start', 'the worker did not answer within 10 s');
      await sleep(25);
    }
  }

  /**
   * A master that an earlier owner of this directory started and could not stop (its process was killed with
   * SIGKILL, so no exit handler ran): it still serves, with a config nobody drives any more, on the port this
   * start is about to take. It gets SIGUSR1 (a soft stop: it closes its listeners at once and lets its
   * requests finish), and this start waits up to 5 s for it to go. Only a live process whose command line
   * names this directory's config is touched, so a pid the kernel reused is left alone.
   */
  async #stopLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number(readFileSync(this.#files.pid, 'utf8').trim());
    } catch {
      return;
    }
    const owns = () => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return cmdline.some((arg) => arg.endsWith('haproxy')) && cmdline.includes(this.#files.config);
      } catch {
        return false;
      }
    };
    if (!(pid > 1) || !owns()) return;
    this.#logger.warn({ pid }, 'stopping the haproxy a killed balancer left running');
    try {
      process.kill(pid, 'SIGUSR1');
    } catch {
      return;
    }
    const deadline = Date.now() + 5000;
    while (owns() && Date.now() < deadline) await sleep(25);
  }

  /** The serving worker's pid, from `show info` on the stats socket. */
  async workerPid(): Promise<number> {
    const info = await runtimeCommand(this.#files.stats, 'show info', 2000);
    const pid = /^Pid: (\d+)/m.exec(info)?.[1];
    if (pid === undefined) throw haproxyFailed('show info', 'no Pid in the answer');
    return Number(pid);
  }

  /**
   * Seamless reload through the master CLI, then waits until the new worker owns the stats socket. The old
   * worker finishes its requests (up to `hard-stop-after`) and exits on its own.
   */
  async reload(): Promise<void> {
    const before = await this.workerPid();
    await runtimeCommand(this.#files.master, 'reload', 5000);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const pid = await this.workerPid().catch(() => before);
      if (pid !== before) return;
      if (Date.now() > deadline) {
        const procs = await runtimeCommand(this.#files.master, 'show proc', 2000).catch(() => '');
        throw haproxyFailed(
          'reload',
          /failed/.test(procs) ? 'the new config failed to load' : 'no new worker in 10 s',
        );
      }
      await sleep(20);
    }
  }

  /** Stops haproxy: SIGTERM (hard stop) after `graceMs` of soft stop (SIGUSR1), SIGKILL if it lingers. */
  async stop(graceMs: number): Promise<void> {
    const child = this.#child;
    this.#stopping = true;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (graceMs > 0) child.kill('SIGUSR1');
    const term = setTimeout(() => child.kill('SIGTERM'), graceMs);
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 3000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}
