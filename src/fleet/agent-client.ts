import { request } from 'node:http';
import { agentUnavailable, ClonesError } from '../errors.ts';
import type { AgentStatus } from './host-agent.ts';
import type { CloneInfo } from './supervisor.ts';

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
      env?: Record<string, string>;
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

  async logs(clone: string | undefined, lines: number): Promise<string> {
    const q = new URLSearchParams({ lines: String(lines), ...(clone ? { clone } : {}) });
    return (await this.#call('GET', `/logs?${q}`, undefined, 'logs', 10_000, true)) as string;
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
                  new ClonesError(parsed.error.code, `host ${host}: ${step}: ${parsed.error.message}`, {
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
