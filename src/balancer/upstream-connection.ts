import { connect, type Socket } from 'node:net';
import { FIELD_CTL } from './field-syntax.ts';
import type { BodySink } from './request-body.ts';
import { ResponseParser, type ResponseSink } from './response-parser.ts';
import { UpstreamError } from './upstream-error.ts';

/** undici's and curl's connect timeout: a clone that does not accept within this is treated as down. */
const CONNECT_TIMEOUT = 10_000;
/** A Keep-Alive hint is trusted up to this much before the clone's own deadline (undici's threshold). */
const HINT_MARGIN = 1000;
/** A request-target is visible characters only (undici's rule). */
const UNSAFE_TARGET = /[^\x21-\xff]/;
/** Methods whose request means to carry content: without a body they are sent with `content-length: 0`. */
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

export interface UpstreamConnectionOptions {
  /**
   * An idle socket is not reused after this (ms), or 1 s before the clone's Keep-Alive timeout if sooner; it
   * is closed when next wanted, or by the connection's timer, whichever comes first.
   */
  idleTimeout: number;
  /** Time for response headers after the request's last byte, and the longest gap in the body (ms). */
  timeout: number;
}

/** One request to a clone: `headers` is a flat [name, value, ...] list; framing is the connection's job. */
export interface UpstreamRequest {
  method: string;
  path: string;
  headers: readonly string[];
  /** A body will follow, written to the sink `dispatch` returns. */
  body: boolean;
}

/** What learns how an upstream request went; the calls follow undici's dispatch-handler interface. */
export interface UpstreamHandler {
  /** Called at once by `dispatch`; `abort` gives the attempt up (then `onError` follows). */
  onConnect(abort: (err?: Error) => void): void;
  /** The final (non-1xx) response head. */
  onHeaders(status: number, raw: string[], resume: () => void, statusText: string): boolean;
  /** A piece of the body; false pauses the clone until `resume`. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** The attempt failed; `err.code` says how (an UpstreamErrorCode, or a socket errno such as ECONNREFUSED). */
  onError(err: Error): void;
}

enum Phase {
  None,
  Connect,
  Headers,
  Body,
  Idle,
}

/** Sockets with requests written this turn of the event loop, sent together once I/O callbacks are done. */
let corked: Socket[] = [];

/** Where upstream reads land (see #connect); each read is copied out before the next one. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function uncorkAll(): void {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}

function corkUntilImmediate(socket: Socket): void {
  socket.cork();
  if (corked.push(socket) === 1) setImmediate(uncorkAll);
}

/**
 * One keep-alive HTTP/1.1 connection to a clone, one request at a time (no pipelining). It connects on
 * demand, reconnects after the clone closes, and knows whether its socket has already carried a response
 * (`served`): a reset on such a reused socket is the keep-alive race (the clone closed the idle socket as the
 * request arrived), a request that never reached the clone. It reuses a socket only while the clone allows
 * (no `Connection: close`, not a close-delimited body, within 1 s of its `Keep-Alive: timeout=N`), and drops
 * it on any byte the clone sends that no request asked for, so a clone cannot desynchronise the balancer.
 *
 * @example
 *   const conn = new UpstreamConnection('127.0.0.1', 3001, '127.0.0.1:3001', { idleTimeout: 4000, timeout: 30_000 });
 *   const sink = conn.dispatch({ method: 'POST', path: '/', headers: ['content-length', '2'], body: true }, handler);
 *   sink?.write(Buffer.from('hi'));
 *   sink?.end();
 */
export class UpstreamConnection implements ResponseSink {
  /** Responses completed on the current socket; 0 on a fresh or closed one. */
  served = 0;
  /** Held by a request whose body is still arriving from the client (the pool's upload share). */
  upload = false;
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #options: UpstreamConnectionOptions;
  readonly #parser = new ResponseParser(this);
  #socket: Socket | undefined = undefined;
  #connected = false;
  #handler: UpstreamHandler | undefined = undefined;
  /** The current request's body, while it is being written. */
  #body: RequestWriter | undefined = undefined;
  /** Until when (performance.now()) an idle socket may carry another request. */
  #reusableUntil = 0;
  #phase = Phase.None;
  #deadline = 0;
  #timer: NodeJS.Timeout | undefined = undefined;
  #timerAt = 0;

  constructor(host: string, port: number, hostHeader: string, options: UpstreamConnectionOptions) {
    this.#host = host;
    this.#port = port;
    this.#hostHeader = hostHeader;
    this.#options = options;
  }

  /** A request is in flight. */
  get busy(): boolean {
    return this.#handler !== undefined;
  }

  /**
   * Sends a request; the handler hears how it goes. Returns the sink for its body when `request.body`, or
   * undefined (no body, or the request failed at once: then `onError` has been called).
   */
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): BodySink | undefined {
    if (this.#handler !== undefined) throw new Error('UpstreamConnection: one request at a time');
    this.#handler = handler;
    const abort = (err?: Error): void => {
      if (this.#handler === handler)
        this.#fail(err ?? new UpstreamError('UPSTREAM_ABORTED', 'the balancer gave the attempt up'));
    };
    handler.onConnect(abort);
    if (this.#handler !== handler) return undefined;
    const head = this.#head(request);
    if (head === undefined) {
      // Refused before a byte was written: the socket stays as it was.
      this.#handler = undefined;
      handler.onError(new UpstreamError('UPSTREAM_BAD_REQUEST', 'the request cannot be written as HTTP/1.1'));
      return undefined;
    }
    let socket = this.#socket;
    if (socket !== undefined && performance.now() > this.#reusableUntil) {
      this.#drop();
      socket = undefined;
    }
    socket ??= this.#connect();
    this.#parser.start(request.method === 'HEAD');
    this.#arm(this.#connected ? Phase.Headers : Phase.Connect);
    // The head, and a body written before this turn of the event loop ends, leave in one write.
    corkUntilImmediate(socket);
    socket.write(head.text, 'latin1');
    if (!request.body) return undefined;
    const writer = new RequestWriter(this, socket, head.length);
    this.#body = writer;
    return writer;
  }

  /** Closes the socket once no request is on it. */
  close(): void {
    if (this.#handler === undefined) this.#drop();
  }

  /** Closes the socket now; a request in flight fails with `UPSTREAM_DESTROYED`. */
  destroy(): void {
    if (this.#handler !== undefined)
      this.#fail(new UpstreamError('UPSTREAM_DESTROYED', 'the connection to the clone was closed'));
    this.#drop();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The request line and fields, with the connection's own Host and framing; undefined when unsafe. */
  #head(request: UpstreamRequest): { text: string; length: number | undefined } | undefined {
    const { method, path, headers } = request;
    if (UNSAFE_TARGET.test(path)) return undefined;
    let text = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    let length: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      if (FIELD_CTL.test(value) || FIELD_CTL.test(name)) return undefined;
      const n = name.length;
      if (n === 4 && name.toLowerCase() === 'host') host = true;
      else if (n === 14 && name.toLowerCase() === 'content-length') {
        if (length !== undefined && length !== value) return undefined;
        length = value;
        continue;
      }
      text += `${name}: ${value}\r\n`;
    }
    if (!host) text += `host: ${this.#hostHeader}\r\n`;
    if (length !== undefined) text += `content-length: ${length}\r\n`;
    else if (request.body) text += 'transfer-encoding: chunked\r\n';
    else if (EXPECTS_BODY.has(method)) text += 'content-length: 0\r\n';
    text += '\r\n';
    return { text, length: length === undefined ? undefined : Number(length) };
  }

  #connect(): Socket {
    // Reads land in one buffer shared by every upstream socket and are copied out at once (most answers
    // are small): Node would otherwise allocate 64 KiB per read and emit it through the stream machinery.
    const socket: Socket = connect({
      host: this.#host,
      port: this.#port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number): boolean => {
          const chunk = Buffer.allocUnsafe(n);
          READ_BUFFER.copy(chunk, 0, 0, n);
          this.#onRead(socket, chunk);
          return true;
        },
      },
    });
    this.#socket = socket;
    this.#connected = false;
    this.served = 0;
    socket.on('connect', () => {
      if (socket !== this.#socket) return;
      this.#connected = true;
      if (this.#phase === Phase.Connect) this.#arm(Phase.Headers);
    });
    socket.on('end', () => {
      if (socket !== this.#socket) return;
      if (this.#handler !== undefined && !this.#parser.eof()) this.#fail(this.#closed());
      this.#drop();
    });
    socket.on('error', (err: Error) => {
      if (socket !== this.#socket) return;
      if (this.#handler !== undefined) {
        const code = (err as NodeJS.ErrnoException).code;
        this.#fail(this.#parser.started && code !== undefined ? this.#closed() : err);
      }
      this.#drop();
    });
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      if (this.#handler !== undefined) this.#fail(this.#closed());
      this.#drop();
    });
    return socket;
  }

  /** Bytes from the clone: they belong to the request in flight, or the socket is dropped. */
  #onRead(socket: Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    if (this.#handler === undefined) {
      // Bytes no request asked for: whatever the clone is doing, this socket's framing is lost.
      this.#drop();
      return;
    }
    try {
      this.#parser.execute(chunk);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  /** The connection closed under a request: before any byte of the answer, or in the middle of it. */
  #closed(): UpstreamError {
    return this.#parser.started
      ? new UpstreamError('UPSTREAM_TRUNCATED', 'the clone closed the connection in the middle of its answer')
      : new UpstreamError('UPSTREAM_CLOSED', 'the clone closed the connection before answering');
  }

  onHead(status: number, reason: string, raw: string[]): void {
    this.#arm(Phase.Body);
    this.#handler?.onHeaders(status, raw, this.#resume, reason);
  }

  onBody(chunk: Buffer): boolean {
    this.#deadline = performance.now() + this.#options.timeout;
    const handler = this.#handler;
    if (handler === undefined || handler.onData(chunk)) return true;
    this.#socket?.pause();
    return false;
  }

  onEnd(): void {
    const handler = this.#handler!;
    this.#handler = undefined;
    const parser = this.#parser;
    const bodySent = this.#body === undefined || this.#body.ended;
    this.#body?.retire();
    this.#body = undefined;
    const announced = parser.hint > 0 ? parser.hint - HINT_MARGIN : Number.POSITIVE_INFINITY;
    const keep = Math.min(this.#options.idleTimeout, announced);
    if (parser.keepAlive && !parser.extra && bodySent && keep > 0 && this.#socket !== undefined) {
      this.served++;
      this.#reusableUntil = performance.now() + keep;
      this.#arm(Phase.Idle, keep);
      // Paused for backpressure on the last chunk: listen again, for a close or unsolicited bytes.
      if (parser.paused || this.#socket.isPaused()) this.#socket.resume();
      parser.reset();
    } else {
      // An answer that came before the whole request was sent leaves the clone reading a body nobody
      // will finish: this socket cannot carry another request.
      this.#drop();
    }
    handler.onComplete();
  }

  /** Backpressure is over: parse what waited, then read from the clone again. */
  readonly #resume = (): void => {
    const parser = this.#parser;
    if (!parser.paused) return;
    try {
      parser.resume();
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    if (!parser.paused && this.#handler !== undefined) this.#socket?.resume();
  };

  /** Ends the current request with an error; the socket is closed (its framing cannot be trusted). */
  #fail(err: Error): void {
    const handler = this.#handler;
    this.#handler = undefined;
    this.#body?.retire();
    this.#body = undefined;
    this.#parser.reset();
    this.#drop();
    handler?.onError(err);
  }

  #drop(): void {
    const socket = this.#socket;
    this.#phase = this.#handler === undefined ? Phase.None : this.#phase;
    if (socket === undefined) return;
    this.#socket = undefined;
    this.#connected = false;
    this.served = 0;
    socket.destroy();
  }

  /** Sets the deadline of a phase; the one timer fires at the earliest deadline and re-arms if it moved on. */
  #arm(phase: Phase, ms?: number): void {
    const now = performance.now();
    this.#phase = phase;
    const wait = ms ?? (phase === Phase.Connect ? CONNECT_TIMEOUT : this.#options.timeout);
    this.#deadline = now + wait;
    // An idle socket is checked again before reuse, so its timer may fire late; the others may not.
    if (this.#timer !== undefined && (phase === Phase.Idle || this.#deadline >= this.#timerAt)) return;
    clearTimeout(this.#timer);
    this.#timerAt = this.#deadline;
    this.#timer = setTimeout(this.#onTimer, wait);
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const phase = this.#phase;
    if (phase === Phase.None) return;
    const now = performance.now();
    if (phase === Phase.Body && this.#parser.paused) {
      // Paused by the client's backpressure: not the clone's delay.
      this.#deadline = now + this.#options.timeout;
    }
    if (now < this.#deadline) {
      this.#timerAt = this.#deadline;
      this.#timer = setTimeout(this.#onTimer, this.#deadline - now);
      this.#timer.unref();
      return;
    }
    if (phase === Phase.Idle) {
      this.#phase = Phase.None;
      this.#drop();
    } else if (phase === Phase.Connect)
      this.#fail(
        new UpstreamError('UPSTREAM_CONNECT_TIMEOUT', `no connection to the clone in ${CONNECT_TIMEOUT} ms`),
      );
    else if (phase === Phase.Headers)
      this.#fail(
        new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response headers in ${this.#options.timeout} ms`),
      );
    else
      this.#fail(
        new UpstreamError('UPSTREAM_BODY_TIMEOUT', `response body stalled for ${this.#options.timeout} ms`),
      );
  };

  /** A piece of the request body went out: the clone's time to answer counts from the last byte. */
  sent(): void {
    if (this.#phase === Phase.Headers) this.#deadline = performance.now() + this.#options.timeout;
  }

  /** The request body did not match its Content-Length: the clone would misread what follows. */
  lengthMismatch(): void {
    if (this.#handler !== undefined)
      this.#fail(
        new UpstreamError('UPSTREAM_REQUEST_LENGTH', 'the request body did not match its Content-Length'),
      );
  }
}

/**
 * Writes one request's body to the clone: as it is when the request has a Content-Length (which it must
 * match), in chunked coding otherwise. Once retired (the attempt is over) it drops what it is given.
 */
class RequestWriter implements BodySink {
  ended = false;
  #retired = false;
  readonly #conn: UpstreamConnection;
  readonly #socket: Socket;
  /** Bytes still due under Content-Length; undefined for chunked. */
  #left: number | undefined;

  constructor(conn: UpstreamConnection, socket: Socket, length: number | undefined) {
    this.#conn = conn;
    this.#socket = socket;
    this.#left = length;
  }

  retire(): void {
    this.#retired = true;
  }

  write(chunk: Buffer): boolean {
    if (this.#retired || this.ended || chunk.length === 0) return true;
    const socket = this.#socket;
    this.#conn.sent();
    if (this.#left !== undefined) {
      this.#left -= chunk.length;
      if (this.#left < 0) {
        this.#conn.lengthMismatch();
        return true;
      }
      return socket.write(chunk);
    }
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  end(): void {
    if (this.#retired || this.ended) return;
    this.ended = true;
    this.#conn.sent();
    if (this.#left === undefined) this.#socket.write('0\r\n\r\n', 'latin1');
    else if (this.#left !== 0) this.#conn.lengthMismatch();
  }

  once(event: 'drain', fn: () => void): void {
    this.#socket.once(event, fn);
  }
}
