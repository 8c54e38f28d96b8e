import { MemcachedConnection, type MemcachedValue } from './memcached-connection.ts';
import { HashRing } from './memcached-ring.ts';

export type { MemcachedValue } from './memcached-connection.ts';

export interface MemcachedClientOptions {
  /** `host:port` of every server; the ring is built over these exact strings. */
  servers: readonly string[];
  /** Connections per server; requests are pipelined on each. */
  poolSize: number;
  connectTimeoutMs: number;
  /** A connection with requests pending and no answer for this long is dropped. */
  replyTimeoutMs: number;
}

/** Beyond 30 days memcached reads an expiry as a Unix time, not a number of seconds from now. */
const RELATIVE_LIMIT_S = 30 * 24 * 3600;

/**
 * A small memcached client over node:net (text protocol, every command answered: no `noreply`), with a
 * connection pool per server and consistent hashing. Every call names a `route` string that picks the server,
 * so several memcached keys (a session and its side records) that share a route live on one server.
 *
 * @example
 *   const mc = new MemcachedClient({ servers: ['127.0.0.1:11211'], poolSize: 4, connectTimeoutMs: 1000,
 *     replyTimeoutMs: 2000 });
 *   await mc.store('add', route, 'k', Buffer.from('v'), mc.expiry(Date.now() + 60_000));
 */
export class MemcachedClient {
  readonly #ring: HashRing;
  readonly #pools = new Map<string, Pool>();

  constructor(options: MemcachedClientOptions) {
    this.#ring = new HashRing(options.servers);
    for (const server of options.servers) {
      const at = server.lastIndexOf(':');
      const host = server.slice(0, at).replace(/^\[(.*)\]$/, '$1');
      this.#pools.set(server, new Pool(host, Number(server.slice(at + 1)), options));
    }
  }

  /** The server a route maps to (for tests and logs). */
  serverFor(route: string): string {
    return this.#ring.pick(route);
  }

  /** `get` (or `gets` with `cas`) of several keys on the route's server in one round trip. */
  async get(route: string, keys: readonly string[], cas = false): Promise<Map<string, MemcachedValue>> {
    const connection = await this.#pool(route).connection();
    return connection.values(`${cas ? 'gets' : 'get'} ${keys.join(' ')}\r\n`);
  }

  /**
   * `add`, `set` or `cas` (with `casUnique`): answers memcached's status line, `STORED`, `NOT_STORED`,
   * `EXISTS` or `NOT_FOUND`.
   */
  async store(
    command: 'add' | 'set' | 'cas',
    route: string,
    key: string,
    value: Buffer,
    exptime: number,
    casUnique?: string,
  ): Promise<string> {
    const connection = await this.#pool(route).connection();
    const head = `${command} ${key} 0 ${exptime} ${value.length}${command === 'cas' ? ` ${casUnique}` : ''}\r\n`;
    return connection.line(Buffer.concat([Buffer.from(head, 'latin1'), value, Buffer.from('\r\n')]));
  }

  /** Native TOUCH: moves the item's expiry without sending its value. `TOUCHED` or `NOT_FOUND`. */
  async touch(route: string, key: string, exptime: number): Promise<string> {
    return (await this.#pool(route).connection()).line(`touch ${key} ${exptime}\r\n`);
  }

  /** `DELETED` or `NOT_FOUND`. */
  async delete(route: string, key: string): Promise<string> {
    return (await this.#pool(route).connection()).line(`delete ${key}\r\n`);
  }

  /**
   * The memcached expiry for a time in ms since the epoch: whole seconds from now, rounded up plus one so the
   * item outlives `at` (callers check their own ms-precise expiry on read); a Unix time past 30 days; -1
   * (already expired) for a time in the past.
   */
  expiry(at: number, now = Date.now()): number {
    if (at <= now) return -1;
    const seconds = Math.ceil((at - now) / 1000) + 1;
    return seconds <= RELATIVE_LIMIT_S ? seconds : Math.ceil(at / 1000) + 1;
  }

  close(): void {
    for (const pool of this.#pools.values()) pool.close();
  }

  #pool(route: string): Pool {
    return this.#pools.get(this.#ring.pick(route)) as Pool;
  }
}

/**
 * A fixed number of pipelined connections to one server, opened on first use and reopened after a failure.
 * Two calls that find the same slot broken share one reconnect attempt.
 */
class Pool {
  readonly #slots: Array<MemcachedConnection | Promise<MemcachedConnection> | undefined>;
  readonly #host: string;
  readonly #port: number;
  readonly #options: MemcachedClientOptions;
  #next = 0;
  #closed = false;

  constructor(host: string, port: number, options: MemcachedClientOptions) {
    this.#host = host;
    this.#port = port;
    this.#options = options;
    this.#slots = new Array(Math.max(1, options.poolSize)).fill(undefined);
  }

  connection(): Promise<MemcachedConnection> | MemcachedConnection {
    if (this.#closed) throw new Error('the memcached client was closed');
    const i = this.#next;
    this.#next = (i + 1) % this.#slots.length;
    const slot = this.#slots[i];
    if (slot instanceof MemcachedConnection && slot.usable) return slot;
    if (slot instanceof Promise) return slot;
    const opening = MemcachedConnection.open(
      this.#host,
      this.#port,
      this.#options.connectTimeoutMs,
      this.#options.replyTimeoutMs,
    ).then(
      (connection) => {
        if (this.#closed) connection.close();
        else this.#slots[i] = connection;
        return connection;
      },
      (err: Error) => {
        this.#slots[i] = undefined;
        throw new Error(`memcached ${this.#host}:${this.#port}: ${err.message}`);
      },
    );
    this.#slots[i] = opening;
    return opening;
  }

  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) {
      if (slot instanceof MemcachedConnection) slot.close();
      else slot?.then((c) => c.close()).catch(() => {});
    }
    this.#slots.fill(undefined);
  }
}
