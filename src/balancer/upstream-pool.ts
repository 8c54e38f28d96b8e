import { Client } from 'undici';

export interface UpstreamPoolOptions {
  /** Idle upstream sockets close after this, or 1 s before the clone's Keep-Alive timeout if sooner. */
  idleTimeout: number;
  /** Most connections to the target at once; further requests wait for one to be free. */
  maxSockets: number;
  /** Most idle connections kept open; one released beyond this is closed. */
  maxFreeSockets: number;
  /** Time for the clone to send response headers, and the longest gap between body chunks. */
  timeout: number;
}

/**
 * One keep-alive connection to a clone: an undici Client that runs one request at a time (no pipelining),
 * and knows whether its current socket has already carried a response. A reset on such a reused socket is
 * the keep-alive race (the clone closed the idle socket as the request arrived): the request never reached
 * the clone and may be sent elsewhere whatever its method.
 */
export class UpstreamConnection extends Client {
  /** Responses completed on the current socket; 0 on a fresh or closed one. */
  served = 0;
}

function onSocketChange(this: UpstreamConnection): void {
  this.served = 0;
}

/**
 * The keep-alive connection pool for one target, on undici. Idle connections are reused last-in first-out,
 * so the pool stays small and warm; undici closes an idle socket after `idleTimeout`, or one second before
 * the timeout the clone announces in its `Keep-Alive: timeout=N` response header when that is sooner, so the
 * balancer never writes a request onto a socket the clone is closing.
 *
 * @example
 *   const pool = new UpstreamPool('http://127.0.0.1:3001', {
 *     idleTimeout: 4000, maxSockets: 512, maxFreeSockets: 256, timeout: 30_000,
 *   });
 *   const conn = pool.acquire(); // undefined: all busy, wait with pool.wait(fn)
 *   conn?.dispatch({ method: 'GET', path: '/', headers: [] }, handler);
 *   pool.release(conn);
 */
export class UpstreamPool {
  readonly #origin: string;
  readonly #options: UpstreamPoolOptions;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  readonly #waiting: ((conn: UpstreamConnection | undefined) => void)[] = [];
  #destroyed = false;

  constructor(origin: string, options: UpstreamPoolOptions) {
    this.#origin = origin;
    this.#options = options;
  }

  /** Open connections, busy or idle. */
  get size(): number {
    return this.#all.size;
  }

  /** A free connection, or undefined when `maxSockets` are busy (then `wait`). */
  acquire(): UpstreamConnection | undefined {
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    if (this.#all.size >= this.#options.maxSockets || this.#destroyed) return undefined;
    const o = this.#options;
    const conn = new UpstreamConnection(this.#origin, {
      pipelining: 1,
      keepAliveTimeout: o.idleTimeout,
      keepAliveTimeoutThreshold: 1000,
      headersTimeout: o.timeout,
      bodyTimeout: o.timeout,
    });
    conn.on('connect', onSocketChange);
    conn.on('disconnect', onSocketChange);
    this.#all.add(conn);
    return conn;
  }

  /** Calls `fn` with the next connection that is released, or with undefined when the pool is destroyed. */
  wait(fn: (conn: UpstreamConnection | undefined) => void): void {
    this.#waiting.push(fn);
  }

  /**
   * Gives a connection back once its request is over (complete or failed). Undici calls us from inside its
   * own bookkeeping, so a new request goes onto the connection on the next tick, never re-entrantly.
   */
  release(conn: UpstreamConnection): void {
    if (this.#destroyed) return;
    const next = this.#waiting.shift();
    if (next !== undefined) process.nextTick(next, conn);
    else if (this.#idle.length < this.#options.maxFreeSockets) this.#idle.push(conn);
    else {
      this.#all.delete(conn);
      void conn.close().catch(() => {});
    }
  }

  destroy(): void {
    this.#destroyed = true;
    this.#idle.length = 0;
    for (const fn of this.#waiting.splice(0)) process.nextTick(fn, undefined);
    for (const conn of this.#all) void conn.destroy().catch(() => {});
    this.#all.clear();
  }
}
