import { Agent, type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';

export interface UpstreamAgentOptions {
  idleTimeout: number;
  maxSockets: number;
  maxFreeSockets: number;
}

/**
 * The keep-alive socket pool for one target. Idle sockets are closed after `idleTimeout`, or one second
 * before the timeout the clone announces in its `Keep-Alive: timeout=N` response header when that is sooner,
 * so the balancer never writes a request onto a socket the clone is closing (the classic keep-alive race).
 * LIFO reuse keeps the pool small and warm.
 *
 * @example
 *   const agent = new UpstreamAgent({ idleTimeout: 4000, maxSockets: 512, maxFreeSockets: 256 });
 */
export class UpstreamAgent extends Agent {
  readonly #idleTimeout: number;

  constructor(options: UpstreamAgentOptions) {
    const agentOptions: AgentOptions = {
      keepAlive: true,
      timeout: options.idleTimeout,
      maxSockets: options.maxSockets,
      maxFreeSockets: options.maxFreeSockets,
      scheduling: 'lifo',
    };
    super(agentOptions);
    this.#idleTimeout = options.idleTimeout;
  }

  // Returns false to refuse reuse; the typings say void, Node's source reads the boolean.
  override keepSocketAlive(socket: Duplex): boolean {
    const s = socket as Duplex & {
      setKeepAlive(on: boolean, delay: number): void;
      setTimeout(ms: number): void;
      unref(): void;
      _httpMessage?: { res?: { headers: Record<string, string | string[] | undefined> } };
    };
    let timeout = this.#idleTimeout;
    const hint = s._httpMessage?.res?.headers['keep-alive'];
    if (typeof hint === 'string') {
      const m = /(?:^|[\s,])timeout\s*=\s*(\d+)/i.exec(hint);
      if (m) {
        const announced = Number(m[1]) * 1000 - 1000;
        if (announced <= 0) return false;
        if (announced < timeout) timeout = announced;
      }
    }
    s.setKeepAlive(true, 1000);
    s.unref();
    s.setTimeout(timeout);
    return true;
  }
}
