import { connect, type Socket } from 'node:net';

/** One item of a `get`/`gets` answer. */
export interface MemcachedValue {
  value: Buffer;
  flags: number;
  /** The CAS unique, present for `gets`. */
  cas?: string;
}

interface Pending {
  /** 'values' reads VALUE blocks until END; 'line' reads one status line. */
  kind: 'values' | 'line';
  values?: Map<string, MemcachedValue>;
  resolve(reply: string | Map<string, MemcachedValue>): void;
  reject(err: Error): void;
}

const CRLF = Buffer.from('\r\n');

/**
 * One TCP connection speaking memcached's text protocol, pipelined: requests are written as they come and
 * answered in order (memcached answers each connection's requests in the order received). No request is ever
 * resent: when the connection drops, every pending request fails, because a `cas` or `set` in flight may or
 * may not have been applied.
 *
 * @example
 *   const c = await MemcachedConnection.open('127.0.0.1', 11211, 1000, 2000);
 *   await c.line('touch k 60\r\n'); // 'TOUCHED' or 'NOT_FOUND'
 */
export class MemcachedConnection {
  readonly #socket: Socket;
  readonly #queue: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #closed = false;
  #error: Error | undefined;

  private constructor(socket: Socket, replyTimeoutMs: number) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed')));
    // A server that stops answering (a crash behind a virtual IP, a dropped NAT entry) must not hold calls
    // until the kernel gives up: with requests pending and no byte for this long, the connection is dropped.
    socket.setTimeout(replyTimeoutMs, () => {
      if (this.#queue.length > 0) socket.destroy(new Error(`no answer within ${replyTimeoutMs} ms`));
    });
  }

  /** Connects, or fails within `connectTimeoutMs`. */
  static open(
    host: string,
    port: number,
    connectTimeoutMs: number,
    replyTimeoutMs: number,
  ): Promise<MemcachedConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${host}:${port} within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new MemcachedConnection(socket, replyTimeoutMs));
      });
    });
  }

  /** False once the socket has closed or failed; the pool then opens a new one. */
  get usable(): boolean {
    return !this.#closed;
  }

  /** Sends a storage, touch or delete command and answers its one status line (`STORED`, `EXISTS`, ...). */
  line(command: string | Buffer): Promise<string> {
    return this.#send(command, 'line') as Promise<string>;
  }

  /** Sends `get`/`gets` and answers the items found, by key. */
  values(command: string): Promise<Map<string, MemcachedValue>> {
    return this.#send(command, 'values') as Promise<Map<string, MemcachedValue>>;
  }

  close(): void {
    if (this.#closed) return;
    this.#socket.end();
    this.#fail(new Error('connection closed'));
  }

  #send(command: string | Buffer, kind: Pending['kind']): Promise<string | Map<string, MemcachedValue>> {
    if (this.#closed) return Promise.reject(this.#error ?? new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind, resolve, reject, values: kind === 'values' ? new Map() : undefined });
      this.#socket.write(command);
    });
  }

  #fail(err: Error): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#error = err;
      this.#socket.destroy();
    }
    for (const pending of this.#queue.splice(0)) pending.reject(err);
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    try {
      this.#parse();
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #parse(): void {
    let offset = 0;
    const buffer = this.#buffer;
    for (;;) {
      const head = this.#queue[0];
      if (!head) {
        if (offset < buffer.length) throw new Error('memcached sent an answer nobody asked for');
        break;
      }
      const eol = buffer.indexOf(CRLF, offset);
      if (eol === -1) break;
      const line = buffer.toString('latin1', offset, eol);
      if (/^(ERROR|CLIENT_ERROR|SERVER_ERROR)/.test(line)) {
        offset = eol + 2;
        this.#queue.shift();
        head.reject(new Error(`memcached: ${line}`));
        continue;
      }
      if (head.kind === 'line') {
        offset = eol + 2;
        this.#queue.shift();
        head.resolve(line);
        continue;
      }
      if (line === 'END') {
        offset = eol + 2;
        this.#queue.shift();
        head.resolve(head.values as Map<string, MemcachedValue>);
        continue;
      }
      // VALUE <key> <flags> <bytes> [<cas unique>]
      const parts = line.split(' ');
      if (parts[0] !== 'VALUE' || parts.length < 4) throw new Error(`unexpected memcached answer: ${line}`);
      const bytes = Number(parts[3]);
      const start = eol + 2;
      if (buffer.length < start + bytes + 2) break; // the value has not fully arrived yet
      const item: MemcachedValue = { value: buffer.subarray(start, start + bytes), flags: Number(parts[2]) };
      if (parts[4] !== undefined) item.cas = parts[4];
      head.values?.set(parts[1] as string, item);
      offset = start + bytes + 2;
    }
    this.#buffer = offset === 0 ? buffer : buffer.subarray(offset);
  }
}
