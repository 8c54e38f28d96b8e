import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { bearerCheck, readJsonObject, sendJson } from '../admin-http.ts';
import { adminNotFound, agentBadRequest, ClonesError, internalError } from '../errors.ts';
import { logger as rootLogger } from '../logger.ts';
import type { CloneInfo } from './clone-info.ts';
import { type DesiredState, DesiredStateFile, writeJsonAtomic } from './desired-state.ts';
import { fleetPaths } from './fleet-paths.ts';
import { checkHealthPath } from './health-path.ts';
import { JobGate } from './job-gate.ts';
import { logsQuery, serveLogs } from './log-stream.ts';
import { processUsage } from './process-usage.ts';
import { readRelease } from './release.ts';
import { releaseToRestart } from './restart-release.ts';
import { rolling } from './rollout/rolling.ts';
import { Supervisor, type SupervisorTimings } from './supervisor.ts';

/** Files of the agent inside its host directory (next to `releases/`, `logs/`, `desired.json`). */
export const agentFiles = Object.freeze({
  token: 'agent-token',
  env: 'agent-env.json',
  clones: 'agent-clones.json',
  pid: 'agent.pid',
  /** What the control machine set besides the env: `{ healthPath }`. */
  settings: 'agent-settings.json',
});

export interface HostAgentOptions {
  /** The host's clones directory: releases, desired state, logs, the token. */
  home: string;
  /** The host address the agent and its clones listen on. */
  bind: string;
  port: number;
  logger?: Logger;
  supervisor?: Partial<SupervisorTimings>;
}

/** What `GET /status` answers. */
export interface AgentStatus {
  pid: number;
  version: string;
  bind: string;
  release: string | null;
  /** The canary release beside `release` while a canary deploy runs (a crashed canary clone restarts as it). */
  canary: string | null;
  epoch: number;
  clonesWanted: number;
  clones: CloneInfo[];
  /** Releases the host holds. */
  releases: string[];
}

/**
 * The host agent: owns one host. It keeps the host's desired state on the host's own disk and supervises
 * the host's clones with the Supervisor (detached: they outlive the agent), so clones keep running and
 * restarting while the control machine is gone. On start it adopts the clones a previous agent left (they
 * still answer GET /up on their port) and boots the missing ones from the release it holds.
 *
 * API on `bind:port`, every call with `Authorization: Bearer <agent-token>`:
 *   GET    /status                          AgentStatus
 *   PUT    /desired  { release, epoch, clones, canary?, env?, healthPath?, converge? }   records it
 *                                           (canary: { release, clones } while a canary runs; healthPath: what
 *                                           a new clone must answer 200 on, kept for restarts); with
 *                                           converge, replaces the
 *                                           host's clones (rolling, nothing to drain: the host is not in
 *                                           the balancer) and answers when done
 *   POST   /clones   { release }            starts one clone; answers once it serves (CloneInfo)
 *   DELETE /clones/<id>                     stops one clone (the control machine drained it first)
 *   GET    /logs?clone=&lines=&since=&follow=1   the clones' logs (text, `<id> <line>`); with follow, a
 *                                           stream of new lines (see log-stream.ts)
 *
 * @example
 *   const agent = await startHostAgent({ home: '/srv/clones', bind: '10.0.0.11', port: 7077 });
 *   process.once('SIGTERM', () => agent.close());
 */
export async function startHostAgent(
  options: HostAgentOptions,
): Promise<{ server: Server; address: AddressInfo; supervisor: Supervisor; close(): Promise<void> }> {
  const logger = options.logger ?? rootLogger.child({ part: 'agent' });
  const paths = fleetPaths(options.home);
  const file = (name: string) => join(paths.home, name);
  const token = readFileSync(file(agentFiles.token), 'utf8').trim();
  const desired = new DesiredStateFile(paths.desired);
  // One object, changed in place: the supervisor keeps a reference to it for every clone it starts.
  const cloneEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...readJson<Record<string, string>>(file(agentFiles.env)),
  };
  let state = desired.read();
  // Kept on disk like the env: a restarted agent adopts and restarts clones on the fleet's health path.
  const settings = readJson<{ healthPath?: string; readyTimeout?: number }>(file(agentFiles.settings)) ?? {};
  const supervisor = new Supervisor({
    ...options.supervisor,
    ...(settings.healthPath ? { healthPath: settings.healthPath } : {}),
    ...(settings.readyTimeout ? { readyTimeout: settings.readyTimeout } : {}),
    paths,
    bind: options.bind,
    detached: true,
    logger,
    env: cloneEnv,
    // A canary clone comes back as the canary (the record names it while the canary runs), not as stable.
    releaseFor: (clone) => releaseToRestart(state, clone.release),
    onEvent: () => persist(),
  });
  const persist = () =>
    writeJsonAtomic(
      file(agentFiles.clones),
      supervisor
        .list()
        .filter((c) => c.pid !== null && c.state !== 'stopped')
        .map(({ id, release, port, pid }) => ({ id, release, port, pid })),
      0o600,
    );

  // The clones a previous agent left: take over those that still serve, leave none half-alive.
  const left =
    readJson<{ id: string; release: string; port: number; pid: number }[]>(file(agentFiles.clones)) ?? [];
  for (const c of left) {
    const adopted = await supervisor.adopt(c).catch(() => false);
    if (!adopted) killIfOurs(c.pid, c.release);
    else logger.info({ clone: c.id, pid: c.pid }, 'adopted a running clone');
  }
  persist();

  const gate = new JobGate();
  const converge = () =>
    gate.alone(async () => {
      if (!state) return;
      const want = new Map([[state.release, state.clones]]);
      for (const c of supervisor.list()) if (c.state === 'failed') await supervisor.stop(c.id, 0);
      await rolling({ clones: supervisor, want, guard: () => {}, weigh: () => {} });
    });
  // Boot from the release this host holds (the machine image): only up to the wanted count. Replacing the
  // clones of another release is the control machine's to do (it drains them in its balancer first, or
  // catches the host up before it serves): an agent that restarts mid-deploy must not race it.
  const boot = (want: DesiredState) =>
    gate.alone(async () => {
      const live = supervisor.list().filter((c) => c.state !== 'failed').length;
      for (let i = live; i < want.clones; i++) await supervisor.start(want.release);
    });
  if (state && existsSync(join(paths.releases, state.release))) {
    void boot(state).catch((err) => logger.error({ err }, 'booting the desired clones failed'));
  }

  const check = bearerCheck(token);
  const version = clonesVersion();
  const status = (): AgentStatus => ({
    pid: process.pid,
    version,
    bind: options.bind,
    release: state?.release ?? null,
    canary: state?.canary?.release ?? null,
    epoch: state?.epoch ?? 0,
    clonesWanted: state?.clones ?? 0,
    // CPU and RSS read here, on the clones' host: the control machine cannot read this host's /proc.
    clones: supervisor.list().map((c) => {
      const u = c.pid ? processUsage(c.pid) : undefined;
      return u ? { ...c, usage: { cpuSeconds: u.cpuSeconds, rss: u.rss } } : c;
    }),
    releases: listHeld(paths.releases),
  });
  const server = createServer(async (req, res) => {
    try {
      check(req);
      const url = new URL(req.url ?? '/', 'http://agent');
      const route = `${req.method} ${url.pathname.replace(/^\/clones\/[^/]+$/, '/clones/:id')}`;
      switch (route) {
        case 'GET /status':
          return sendJson(res, 200, status());
        case 'PUT /desired': {
          const body = await readJsonObject(req);
          const next = parseDesired(body);
          readRelease(paths, next.release); // CLONES_FLEET_UNKNOWN_RELEASE when it was not shipped
          if (next.canary) readRelease(paths, next.canary.release);
          // Every field checked before anything changes.
          const env = body.env === undefined ? undefined : parseEnv(body.env);
          const healthPath =
            body.healthPath === undefined ? undefined : checkHealthPath('healthPath', body.healthPath);
          const readyTimeout =
            body.readyTimeout === undefined ? undefined : parseReadyTimeout(body.readyTimeout);
          if (env) {
            writeJsonAtomic(file(agentFiles.env), env, 0o600);
            Object.assign(cloneEnv, env);
          }
          if (healthPath !== undefined) {
            settings.healthPath = healthPath;
            supervisor.setHealthPath(healthPath);
          }
          if (readyTimeout !== undefined) {
            settings.readyTimeout = readyTimeout;
            supervisor.setReadyTimeout(readyTimeout);
          }
          // Kept on disk: a restarted agent checks and times clones as the control machine asked.
          if (body.healthPath !== undefined || body.readyTimeout !== undefined)
            writeJsonAtomic(file(agentFiles.settings), settings, 0o600);
          if (!state || next.epoch >= state.epoch) {
            state = next;
            desired.write(state);
          }
          if (body.converge === true) await converge();
          return sendJson(res, 200, status());
        }
        case 'POST /clones': {
          const body = await readJsonObject(req);
          if (typeof body.release !== 'string') throw agentBadRequest('release', 'must be a release id');
          const release = readRelease(paths, body.release).digest;
          const clone = await gate.shared(() => supervisor.start(release));
          return sendJson(res, 201, clone);
        }
        case 'DELETE /clones/:id': {
          const id = url.pathname.split('/')[2]!;
          await gate.shared(() => supervisor.stop(id, 0));
          return sendJson(res, 200, status());
        }
        case 'GET /logs':
          return await serveLogs(res, logsQuery(url.searchParams), paths.logs, () =>
            supervisor.list().map((c) => c.id),
          );
        default:
          throw adminNotFound(req.method ?? '', req.url ?? '');
      }
    } catch (err) {
      const e = err instanceof ClonesError ? err : internalError(err, String((err as Error)?.message ?? err));
      if (e.status >= 500) logger.error({ err }, 'agent API error');
      sendJson(res, e.status, e.toJSON());
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.bind, () => resolve());
  });
  writeJsonAtomic(file(agentFiles.pid), process.pid);
  return {
    server,
    address: server.address() as AddressInfo,
    supervisor,
    // The agent stops; its clones do not (that is the point): a new agent adopts them.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseDesired(body: Record<string, unknown>): DesiredState {
  if (typeof body.release !== 'string') throw agentBadRequest('release', 'must be a release id');
  if (!Number.isInteger(body.epoch) || (body.epoch as number) < 0)
    throw agentBadRequest('epoch', 'must be a whole number');
  if (!Number.isInteger(body.clones) || (body.clones as number) < 0 || (body.clones as number) > 256)
    throw agentBadRequest('clones', 'must be a whole number 0-256');
  return {
    release: body.release,
    epoch: body.epoch as number,
    clones: body.clones as number,
    strategy: 'rolling',
    weights: {},
    ...(body.canary === undefined || body.canary === null ? {} : { canary: parseCanary(body.canary) }),
  };
}

function parseCanary(value: unknown): { release: string; clones: number } {
  const c = value as { release?: unknown; clones?: unknown };
  if (value === null || typeof value !== 'object' || typeof c.release !== 'string')
    throw agentBadRequest('canary', 'must be { release, clones }');
  if (!Number.isInteger(c.clones) || (c.clones as number) < 0 || (c.clones as number) > 256)
    throw agentBadRequest('canary.clones', 'must be a whole number 0-256');
  return { release: c.release, clones: c.clones as number };
}

function parseReadyTimeout(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 100 || (value as number) > 3_600_000)
    throw agentBadRequest('readyTimeout', 'must be whole milliseconds, 100 to 3600000');
  return value as number;
}

function parseEnv(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw agentBadRequest('env', 'must be an object of NAME: value');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw agentBadRequest(`env.${k}`, 'must be a string');
    out[k] = v;
  }
  return out;
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Kills a clone a previous agent left that no longer answers, if that pid still runs that release. */
function killIfOurs(pid: number, release: string): void {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes(release)) process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already, or not ours to see.
  }
}

function listHeld(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
}

function clonesVersion(): string {
  try {
    const pkg = new URL('../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
