import { request } from 'node:http';
import { agentUnavailable, errorFromBody } from '../errors.ts';
import type { CloneInfo } from './clone-info.ts';
import type { AgentStatus } from './host-agent.ts';
import { LOGS_HEARTBEAT_MS, type LogsQuery } from './log-stream.ts';

/** Where a host's agent answers, and its token. */
export interface AgentEndpoint {
  host: string;
  address: string;
  port: number;
  token: string;
}

/**
 * A client of one host agent (see host-agent.ts for the API). Every failure is CLONES_FLEET_AGENT_UNAVAILABLE
 * naming the host and the step, or the agent's own coded error.
 *
 * @example
 *   const agent = new AgentClient({ host: 'web-1', address: '10.0.0.11', port: 7077, token });
 *   const { clones } = await agent.status();
 */
export class AgentClient {
  readonly endpoint: AgentEndpoint;

  constructor(endpoint: AgentEndpoint) {
    this.endpoint = endpoint;
  }

  status(timeout = 3000): Promise<AgentStatus> {
    return this.#call('GET', '/status', undefined, 'status', timeout) as Promise<AgentStatus>;
  }

  setDesired(
    desired: {
      release: string;
      epoch: number;
      clones: number;
      /** The canary beside `release` on this host while a canary deploy runs. */
      canary?: { release: string; clones: number };
      env?: Record<string, string>;
      /** The path the agent's supervisor checks a clone on before it counts as ready. */
      healthPath?: string;
      /** How long a clone has to get ready (ms): the control machine's --ready-timeout. */
      readyTimeout?: number;
      converge?: boolean;
    },
    timeout = 120_000,
  ): Promise<AgentStatus> {
    return this.#call('PUT', '/desired', desired, 'set desired state', timeout) as Promise<AgentStatus>;
  }

  startClone(release: string, timeout = 60_000): Promise<CloneInfo> {
    return this.#call(
      'POST',
      '/clones',
      { release },
      `start a clone of ${release.slice(0, 12)}`,
      timeout,
    ) as Promise<CloneInfo>;
  }

  stopClone(id: string, timeout = 60_000): Promise<AgentStatus> {
    return this.#call(
      'DELETE',
      `/clones/${encodeURIComponent(id)}`,
      undefined,
      `stop clone ${id}`,
      timeout,
    ) as Promise<AgentStatus>;
  }

  async logs(clone: string | undefined, lines: number, since?: number): Promise<string> {
    const q = logsParams({ clone, lines, since, follow: false });
    return (await this.#call('GET', `/logs?${q}`, undefined, 'logs', 10_000, true)) as string;
  }

  /**
   * Follows the host's clones' logs (`GET /logs?follow=1`): `onLine` gets each `<clone> <line>` as the
   * agent sends it. Resolves when `signal` aborts; rejects (CLONES_FLEET_AGENT_UNAVAILABLE) when the agent
   * cannot be reached, ends the stream, or sends nothing, not even its heartbeat, for three heartbeats.
   */
  followLogs(
    q: Omit<LogsQuery, 'follow'>,
    onLine: (line: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const { host, address, port, token } = this.endpoint;
    const step = 'follow logs';
    return new Promise((resolve, reject) => {
      if (signal.aborted) return resolve();
      const req = request(
        {
          host: address,
          port,
          path: `/logs?${logsParams({ ...q, follow: true })}`,
          agent: false,
          timeout: LOGS_HEARTBEAT_MS * 3,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return reject(agentUnavailable(host, step, `answered ${res.statusCode}`));
          }
          let partial = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const lines = (partial + chunk).split('\n');
            partial = lines.pop() ?? '';
            for (const l of lines) if (l) onLine(l);
          });
          res.on('error', () => {});
          res.on('close', () =>
            signal.aborted ? resolve() : reject(agentUnavailable(host, step, 'the agent ended the stream')),
          );
        },
      );
      const onAbort = () => req.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new Error('no line and no heartbeat from the agent')));
      req.on('error', (err) =>
        signal.aborted ? resolve() : reject(agentUnavailable(host, step, err.message)),
      );
      req.end();
    });
  }

  #call(
    method: string,
    path: string,
    body: unknown,
    step: string,
    timeout: number,
    text = false,
  ): Promise<unknown> {
    const { host, address, port, token } = this.endpoint;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: address,
          port,
          method,
          path,
          agent: false,
          timeout,
          headers: {
            authorization: `Bearer ${token}`,
            connection: 'close',
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (data += c));
          res.on('error', (err) => reject(agentUnavailable(host, step, err.message)));
          res.on('end', () => {
            if (text && res.statusCode === 200) return resolve(data);
            try {
              const parsed = JSON.parse(data) as { error?: { code: string; message: string } };
              if (parsed?.error) {
                return reject(
                  errorFromBody(parsed.error.code, `host ${host}: ${step}: ${parsed.error.message}`, {
                    status: res.statusCode ?? 500,
                  }),
                );
              }
              resolve(parsed);
            } catch {
              reject(agentUnavailable(host, step, `answered ${res.statusCode} without JSON`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
      req.on('error', (err) => reject(agentUnavailable(host, step, err.message)));
      req.end(payload);
    });
  }
}

/** The query string of `GET /logs`. */
function logsParams(q: LogsQuery): URLSearchParams {
  return new URLSearchParams({
    lines: String(q.lines),
    ...(q.clone ? { clone: q.clone } : {}),
    ...(q.since !== undefined ? { since: String(Math.floor(q.since)) } : {}),
    ...(q.follow ? { follow: '1' } : {}),
  });
}
