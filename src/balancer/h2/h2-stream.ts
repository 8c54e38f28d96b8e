import { EventEmitter } from 'node:events';
import { frame32, RST_STREAM, WINDOW_UPDATE } from './frame.ts';
import { H2_CODES, h2Error } from './h2-error.ts';
import type { H2Session } from './h2-session.ts';

/** Bytes a response may hold back (flow control, a congested socket) before `write` asks the writer to wait. */
const HIGH_WATER = 64 * 1024;

function emitClose(stream: H2Stream): void {
  stream.emit('close');
}

function emitFinish(stream: H2Stream, done: (() => void) | undefined): void {
  stream.emit('finish');
  done?.();
}

/**
 * One request/response exchange of an `H2Session` (RFC 9113 §5.1): the request body as a readable source
 * ('data', 'end', pause/resume, with the stream's flow-control window as backpressure) and the response as a
 * writable one (`respond`, `write` with 'drain', `end` with 'finish'). It emits 'close' once, when both sides
 * have ended or the stream was reset (`rstCode` then says why); a body whose stream is reset never emits
 * 'end', so a truncated body never looks complete. A declared content-length must match the DATA frames,
 * or the stream is reset with PROTOCOL_ERROR (RFC 9113 §8.1.1).
 *
 * @example
 *   stream.on('data', (chunk) => up.write(chunk)).on('end', () => up.end());
 *   stream.respond(200, ['content-type', 'text/plain']);
 *   stream.end(Buffer.from('ok'));
 */
export class H2Stream extends EventEmitter {
  readonly id: number;
  readonly session: H2Session;
  /** The request had no body: END_STREAM came with its headers. */
  readonly endAfterHeaders: boolean;
  headersSent = false;
  /** 'end' was emitted: the whole body was read. */
  readableEnded = false;
  /** END_STREAM of the response has been handed to the session. */
  writableFinished = false;
  /** Both sides ended, or the stream was reset. */
  closed = false;
  /** Why the stream closed: NO_ERROR (0), or the RST_STREAM code sent or received. */
  rstCode = 0;
  /** Bytes the client may still send on this stream (our window). */
  recvWindow: number;
  /** Bytes we may still send on this stream (the client's window). */
  sendWindow: number;
  #remoteEnded: boolean;
  #expected: number;
  #received = 0;
  #flowing = false;
  #paused = false;
  #inbox: Buffer[] = [];
  #unacked = 0;
  #outbox: Buffer[] = [];
  #outBytes = 0;
  #endQueued = false;
  #localEnded = false;
  #wantDrain = false;
  #onFinish: (() => void) | undefined;

  constructor(session: H2Session, id: number, ended: boolean, contentLength: number) {
    super();
    this.session = session;
    this.id = id;
    this.endAfterHeaders = ended;
    this.#remoteEnded = ended;
    this.#expected = contentLength;
    this.recvWindow = session.localWindow;
    this.sendWindow = session.peerWindow;
    if (ended) this.#checkLength();
  }

  get destroyed(): boolean {
    return this.closed;
  }

  // --- The request body. ---

  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own signature.
  override on(event: string | symbol, fn: (...args: any[]) => void): this {
    super.on(event, fn);
    if (event === 'data' && !this.#flowing) {
      this.#flowing = true;
      if (this.#inbox.length > 0 || this.#remoteEnded) process.nextTick(() => this.#deliver());
    }
    return this;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    if (this.#flowing) process.nextTick(() => this.#deliver());
    return this;
  }

  isPaused(): boolean {
    return this.#paused;
  }

  /** Session: a DATA frame's payload; `flowBytes` is what it took of the window (padding included). */
  receive(data: Buffer, end: boolean, flowBytes: number): void {
    if (this.#remoteEnded) throw h2Error('STREAM_CLOSED', 'DATA after END_STREAM', this.id);
    this.recvWindow -= flowBytes;
    if (this.recvWindow < 0) throw h2Error('FLOW_CONTROL_ERROR', 'DATA beyond the stream window', this.id);
    this.#unacked += flowBytes - data.length;
    this.#received += data.length;
    if (this.#expected >= 0 && this.#received > this.#expected)
      throw h2Error('PROTOCOL_ERROR', 'DATA beyond content-length', this.id);
    if (end) {
      this.#remoteEnded = true;
      this.#checkLength();
    }
    if (data.length > 0) this.#inbox.push(data);
    if (this.#flowing && !this.#paused) this.#deliver();
    if (end) this.#maybeClose();
  }

  /** Session: trailers ended the request (they are not forwarded: the clone gets a chunked body without them). */
  remoteEnd(): void {
    if (this.#remoteEnded) throw h2Error('STREAM_CLOSED', 'HEADERS after END_STREAM', this.id);
    this.#remoteEnded = true;
    this.#checkLength();
    if (this.#flowing && !this.#paused) this.#deliver();
    this.#maybeClose();
  }

  #checkLength(): void {
    if (this.#expected >= 0 && this.#received !== this.#expected)
      throw h2Error('PROTOCOL_ERROR', 'DATA shorter than content-length', this.id);
  }

  #deliver(): void {
    while (this.#inbox.length > 0 && !this.#paused && !this.closed) {
      const chunk = this.#inbox.shift()!;
      this.#unacked += chunk.length;
      this.emit('data', chunk);
    }
    if (this.closed) return;
    if (this.#inbox.length === 0 && this.#remoteEnded) {
      if (!this.readableEnded) {
        this.readableEnded = true;
        this.emit('end');
        this.#maybeClose();
      }
      return;
    }
    // Reopen the window once half of it was read (RFC 9113 §6.9): a paused reader holds the client back.
    if (this.#unacked >= this.session.localWindow / 2) {
      this.session.send(frame32(WINDOW_UPDATE, this.id, this.#unacked));
      this.recvWindow += this.#unacked;
      this.#unacked = 0;
    }
  }

  // --- The response. ---

  /** Sends the response headers (a HEADERS frame; CONTINUATION when larger than a frame). */
  respond(status: number, fields: readonly string[]): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.session.out.sendHeaders(this.id, status, fields);
  }

  write(chunk: Buffer): boolean {
    if (this.closed || this.#endQueued) return true;
    if (chunk.length > 0) {
      this.#outbox.push(chunk);
      this.#outBytes += chunk.length;
      this.pump();
    }
    if (this.#outBytes < HIGH_WATER && !this.session.out.congested) return true;
    this.#wantDrain = true;
    this.session.waitDrain(this);
    return false;
  }

  end(chunk?: Buffer, done?: () => void): void {
    if (this.closed || this.#endQueued) return;
    if (chunk !== undefined && chunk.length > 0) {
      this.#outbox.push(chunk);
      this.#outBytes += chunk.length;
    }
    this.#endQueued = true;
    this.#onFinish = done;
    this.pump();
  }

  /** Resets the stream with `code` (RST_STREAM), unless it is already closed. */
  close(code: number = H2_CODES.NO_ERROR): void {
    if (this.closed) return;
    this.session.send(frame32(RST_STREAM, this.id, code));
    this.abort(code, true);
  }

  /** Session: sends what the windows allow; the rest waits for WINDOW_UPDATE. */
  pump(): void {
    const session = this.session;
    while (this.#outbox.length > 0) {
      const room = Math.min(this.sendWindow, session.sendWindow, session.out.maxFrame);
      if (room <= 0) {
        session.block(this);
        break;
      }
      let chunk = this.#outbox[0]!;
      if (chunk.length <= room) this.#outbox.shift();
      else {
        this.#outbox[0] = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      }
      this.#outBytes -= chunk.length;
      this.sendWindow -= chunk.length;
      session.sendWindow -= chunk.length;
      const last = this.#endQueued && this.#outbox.length === 0;
      session.out.sendData(this.id, chunk, last);
      if (last) this.#finish();
    }
    if (this.#endQueued && !this.#localEnded && this.#outbox.length === 0) {
      session.out.sendData(this.id, undefined, true);
      this.#finish();
    }
    if (this.#wantDrain && this.#outBytes < HIGH_WATER && !session.out.congested) {
      this.#wantDrain = false;
      this.emit('drain');
    }
  }

  /** Session: the client's SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (RFC 9113 §6.9.2). */
  adjustWindow(delta: number): void {
    this.sendWindow += delta;
  }

  #finish(): void {
    this.#localEnded = true;
    this.writableFinished = true;
    process.nextTick(emitFinish, this, this.#onFinish);
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (this.#localEnded && this.#remoteEnded) this.abort(H2_CODES.NO_ERROR);
  }

  /** Session: the stream is over (reset by the client, by us, or with its session); nothing more is sent. */
  abort(code: number, sentReset = false): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    this.#outbox.length = 0;
    this.#inbox.length = 0;
    this.session.forget(this, sentReset);
    process.nextTick(emitClose, this);
  }
}
