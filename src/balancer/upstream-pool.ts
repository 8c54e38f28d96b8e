import { UpstreamConnection } from './upstream-connection.ts';

export interface UpstreamPoolOptions {
  /** Idle upstream sockets close after this, or 1 s before the clone's Keep-Alive timeout if sooner. */
  idleTimeout: number;
  /** Most connections to the target at once; further requests wait for one to be free. */
  maxSockets: number;
  /** Most idle connections kept open; one released beyond this is closed. */
  maxFreeSockets: number;
  /** Most connections held at once by requests whose body is still arriving (slow uploads). */
  maxUploadSockets: number;
  /** Time for the clone to send response headers, and the longest gap between body chunks. */
  timeout: number;
}

interface Waiter {
  fn: (conn: UpstreamConnection | undefined) => void;
  upload: boolean;
}

/**
 * The keep-alive connection pool for one target. Idle connections are reused last-in first-out, so the pool
 * stays small and warm; a connection closes an idle socket after `idleTimeout`, or one second before the
 * timeout the clone announces in its `Keep-Alive: timeout=N` response header when that is sooner, so the
 * balancer never writes a request onto a socket the clone is closing.
 *
 * @example
 *   const pool = new UpstreamPool('127.0.0.1', 3001, '127.0.0.1:3001', {
 *     idleTimeout: 4000, maxSockets: 512, maxFreeSockets: 256, maxUploadSockets: 256, timeout: 30_000,
 *   });
 *   const conn = pool.acquire(false); // undefined: all busy, wait with pool.wait(fn, false)
 *   conn?.dispatch({ method: 'GET', path: '/', headers: [], body: false }, handler);
 *   pool.release(conn);
 */
export class UpstreamPool {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #options: UpstreamPoolOptions;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  readonly #waiting: Waiter[] = [];
  #uploads = 0;
  #destroyed = false;

  constructor(host: string, port: number, hostHeader: string, options: UpstreamPoolOptions) {
    this.#host = host;
    this.#port = port;
    this.#hostHeader = hostHeader;
    this.#options = options;
  }

  /** Open connections, busy or idle. */
  get size(): number {
    return this.#all.size;
  }

  /** Connections held by requests whose body is still arriving. */
  get uploads(): number {
    return this.#uploads;
  }

  /**
   * A free connection, or undefined when `maxSockets` are busy, or `maxUploadSockets` for an upload (then
   * `wait`). `upload`: the request's body is still arriving from the client.
   */
  acquire(upload: boolean): UpstreamConnection | undefined {
    if (upload && this.#uploads >= this.#options.maxUploadSockets) return undefined;
    let conn = this.#idle.pop();
    if (conn === undefined) {
      if (this.#all.size >= this.#options.maxSockets || this.#destroyed) return undefined;
      const o = this.#options;
      conn = new UpstreamConnection(this.#host, this.#port, this.#hostHeader, {
        idleTimeout: o.idleTimeout,
        timeout: o.timeout,
      });
      this.#all.add(conn);
    }
    if (upload) this.#hold(conn);
    return conn;
  }

  /**
   * Calls `fn` with the next connection that is free for this kind of request, or with undefined when the pool
   * is destroyed. Returns a function that withdraws the wait (queue timeout, client gone).
   */
  wait(fn: (conn: UpstreamConnection | undefined) => void, upload: boolean): () => void {
    const waiter: Waiter = { fn, upload };
    this.#waiting.push(waiter);
    return () => {
      const i = this.#waiting.indexOf(waiter);
      if (i !== -1) this.#waiting.splice(i, 1);
    };
  }

  /** The upload's body has been read to its end: its connection no longer counts toward `maxUploadSockets`. */
  uploaded(conn: UpstreamConnection): void {
    if (!conn.upload) return;
    conn.upload = false;
    this.#uploads--;
    this.#serveUploadWaiter();
  }

  /**
   * Gives a connection back once its request is over (complete or failed). That is said from inside the
   * connection's handler calls, so a new request goes onto the connection on the next tick, never
   * re-entrantly.
   */
  release(conn: UpstreamConnection): void {
    if (conn.upload) {
      conn.upload = false;
      this.#uploads--;
    }
    if (this.#destroyed) return;
    const i = this.#nextWaiter();
    if (i !== -1) {
      const [next] = this.#waiting.splice(i, 1);
      if (next!.upload) this.#hold(conn);
      process.nextTick(next!.fn, conn);
    } else if (this.#idle.length < this.#options.maxFreeSockets) this.#idle.push(conn);
    else {
      this.#all.delete(conn);
      conn.close();
    }
  }

  /** The first waiter a free connection may go to: uploads only while they are under their share. */
  #nextWaiter(): number {
    const uploadsFull = this.#uploads >= this.#options.maxUploadSockets;
    for (let i = 0; i < this.#waiting.length; i++) if (!uploadsFull || !this.#waiting[i]!.upload) return i;
    return -1;
  }

  /** An upload slot came free while connections are idle or can still be opened: give it to a waiting upload. */
  #serveUploadWaiter(): void {
    const i = this.#waiting.findIndex((w) => w.upload);
    if (i === -1) return;
    const conn = this.acquire(true);
    if (conn === undefined) return;
    const [next] = this.#waiting.splice(i, 1);
    process.nextTick(next!.fn, conn);
  }

  #hold(conn: UpstreamConnection): void {
    conn.upload = true;
    this.#uploads++;
  }

  destroy(): void {
    this.#destroyed = true;
    this.#idle.length = 0;
    for (const w of this.#waiting.splice(0)) process.nextTick(w.fn, undefined);
    for (const conn of this.#all) conn.destroy();
    this.#all.clear();
  }
}
