import { DIGITS, FIELD_CTL, TOKEN } from './field-syntax.ts';
import { UpstreamError } from './upstream-error.ts';

/** Largest response head (status line and fields), and largest trailer section: Node's and undici's 16 KiB. */
const MAX_HEAD = 16 * 1024;
/** Largest chunk-size line, extensions included. */
const MAX_CHUNK_LINE = 4096;

const CRLF2 = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: (.*))?$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,13})[ \t]*(?:;.*)?$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i;

enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  Close,
  Done,
}

/** Where a parsed response goes. */
export interface ResponseSink {
  onHead(status: number, reason: string, raw: string[]): void;
  /** False: stop until `resume()` (backpressure). */
  onBody(chunk: Buffer): boolean;
  onEnd(): void;
}

function bad(why: string): UpstreamError {
  return new UpstreamError('UPSTREAM_BAD_RESPONSE', `bad response from the clone: ${why}`);
}

/** Checks a header or trailer line (`name: value`) and returns the colon's index; throws when malformed. */
function fieldLine(line: string, what: 'header' | 'trailer'): number {
  const colon = line.indexOf(':');
  if (colon <= 0) throw bad(`malformed ${what} line`);
  if (!TOKEN.test(line.slice(0, colon))) throw bad(`malformed ${what} name`);
  if (FIELD_CTL.test(line)) throw bad(`control character in a ${what}`);
  return colon;
}

/**
 * A strict HTTP/1.1 response parser for one keep-alive connection, one response at a time (RFC 9112): it
 * skips 1xx answers, frames the body by Content-Length, chunked coding (extensions and trailers read and
 * dropped) or the connection's close, and sends no body for HEAD, 204 and 304. Anything it cannot frame with
 * certainty throws an UpstreamError `UPSTREAM_BAD_RESPONSE`: obs-fold, whitespace before a colon, control
 * characters, differing or malformed Content-Length, Content-Length beside Transfer-Encoding, a coding other
 * than chunked. Bytes after the response's end are flagged in `extra`: the connection must not be reused.
 *
 * @example
 *   const parser = new ResponseParser(sink);
 *   parser.start(false); // a GET is on its way
 *   socket.on('data', (chunk) => parser.execute(chunk)); // throws UpstreamError on a bad response
 *   socket.on('end', () => parser.eof() || fail());
 */
export class ResponseParser {
  /** After the head: the connection may carry another request once this response ends. */
  keepAlive = true;
  /** The clone's `Keep-Alive: timeout=N` in ms; 0 when it sent none. */
  hint = 0;
  /** Bytes came after the end of the response. */
  extra = false;
  /** Some byte of the response has arrived. */
  started = false;
  /** The sink asked for a pause; bytes not yet parsed wait in `#pending`. */
  paused = false;
  readonly #sink: ResponseSink;
  #state = State.Idle;
  #noBody = false;
  #remaining = 0;
  #trailerBytes = 0;
  /** An incomplete head or line, carried over to the next chunk. */
  #carry: Buffer | undefined = undefined;
  #pending: Buffer | undefined = undefined;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  /** A request went out: expect its response. `noBody`: the request was HEAD. */
  start(noBody: boolean): void {
    this.#state = State.Head;
    this.#noBody = noBody;
    this.keepAlive = true;
    this.hint = 0;
    this.extra = false;
    this.started = false;
    this.paused = false;
    this.#carry = undefined;
    this.#pending = undefined;
  }

  /** No response is expected any more (the attempt failed). */
  reset(): void {
    this.#state = State.Idle;
    this.#carry = undefined;
    this.#pending = undefined;
    this.paused = false;
  }

  /** Waiting for a response that has not ended. */
  get busy(): boolean {
    return this.#state !== State.Idle && this.#state !== State.Done;
  }

  /** Parses what arrived; throws UpstreamError on a response it cannot frame. */
  execute(chunk: Buffer): void {
    const state = this.#state;
    if (state === State.Idle || state === State.Done) {
      if (chunk.length > 0) this.extra = true;
      return;
    }
    this.started = true;
    let at = 0;
    while (at < chunk.length) {
      if (this.paused) {
        this.#pending = chunk.subarray(at);
        return;
      }
      switch (this.#state) {
        case State.Head:
          at = this.#readHead(chunk, at);
          break;
        case State.Length: {
          const n = Math.min(this.#remaining, chunk.length - at);
          this.#remaining -= n;
          const part = at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n);
          at += n;
          if (this.#remaining === 0) {
            this.#end(chunk, at, part);
            return;
          }
          if (!this.#sink.onBody(part)) this.paused = true;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, chunk.length - at);
          this.#remaining -= n;
          const part = chunk.subarray(at, at + n);
          at += n;
          if (this.#remaining === 0) this.#state = State.ChunkEnd;
          if (!this.#sink.onBody(part)) this.paused = true;
          break;
        }
        case State.ChunkSize:
        case State.ChunkEnd:
        case State.Trailers:
          at = this.#readLine(chunk, at);
          break;
        case State.Close: {
          const part = at === 0 ? chunk : chunk.subarray(at);
          at = chunk.length;
          if (!this.#sink.onBody(part)) this.paused = true;
          break;
        }
        default:
          this.extra = true;
          return;
      }
      if ((this.#state as State) === State.Done) {
        // The response ended inside this chunk (a head with no body, or a last chunk): anything after it is
        // a second answer nobody asked for.
        if (at < chunk.length) this.extra = true;
        this.#sink.onEnd();
        return;
      }
    }
  }

  /** Carries on after a pause. */
  resume(): void {
    this.paused = false;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) this.execute(pending);
  }

  /**
   * The clone closed the connection. True when that ends the response (a close-delimited body) or no
   * response was due; false when the response was cut short.
   */
  eof(): boolean {
    if (this.#state === State.Close && this.#pending === undefined) {
      this.#state = State.Done;
      this.#sink.onEnd();
      return true;
    }
    return !this.busy;
  }

  /** The last piece of a length-framed body: delivered, then the response ends. */
  #end(chunk: Buffer, at: number, part: Buffer): void {
    this.#state = State.Done;
    if (at < chunk.length) this.extra = true;
    if (part.length > 0) this.#sink.onBody(part);
    this.#sink.onEnd();
  }

  #readHead(chunk: Buffer, at: number): number {
    const carried = this.#carry?.length ?? 0;
    const buf = carried === 0 ? chunk.subarray(at) : Buffer.concat([this.#carry!, chunk.subarray(at)]);
    const end = buf.indexOf(CRLF2, Math.max(0, carried - 3));
    if (end === -1) {
      if (buf.length > MAX_HEAD) throw bad(`response head over ${MAX_HEAD} bytes`);
      this.#carry = buf;
      return chunk.length;
    }
    if (end > MAX_HEAD) throw bad(`response head over ${MAX_HEAD} bytes`);
    this.#carry = undefined;
    this.#parseHead(buf.toString('latin1', 0, end));
    return at + end + 4 - carried;
  }

  #parseHead(text: string): void {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (m === null || FIELD_CTL.test(lines[0]!)) throw bad('malformed status line');
    const status = Number(m[2]);
    const http10 = m[1] === '0';
    const raw: string[] = [];
    let length: string | undefined;
    let chunked = false;
    let coding = false;
    let close = false;
    let keepAlive = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = fieldLine(line, 'header');
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      raw.push(name, value);
      const n = name.length;
      if (n !== 14 && n !== 17 && n !== 10) continue;
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!DIGITS.test(value)) throw bad('malformed Content-Length');
        if (length !== undefined && length !== value) throw bad('differing Content-Length values');
        length = value;
      } else if (lower === 'transfer-encoding') {
        if (coding || value.toLowerCase() !== 'chunked') throw bad('a transfer coding other than chunked');
        coding = chunked = true;
      } else if (lower === 'connection') {
        for (const token of value.toLowerCase().split(',')) {
          const t = token.trim();
          if (t === 'close') close = true;
          else if (t === 'keep-alive') keepAlive = true;
        }
      } else if (lower === 'keep-alive') {
        const t = KEEP_ALIVE_TIMEOUT.exec(value);
        if (t !== null) this.hint = Number(t[1]) * 1000;
      }
    }
    if (status < 200) {
      // 100 Continue, 103 Early Hints: informational, dropped; the real answer follows. A 101 was never
      // asked for (upgrades do not go through this client).
      if (status === 101) throw bad('101 Switching Protocols without an upgrade');
      this.hint = 0;
      return;
    }
    if (chunked && length !== undefined) throw bad('Content-Length beside Transfer-Encoding');
    this.keepAlive = !close && (!http10 || keepAlive);
    this.#sink.onHead(status, m[3] ?? '', raw);
    if (this.#noBody || status === 204 || status === 304) this.#state = State.Done;
    else if (chunked) this.#state = State.ChunkSize;
    else if (length !== undefined) {
      this.#remaining = Number(length);
      this.#state = this.#remaining === 0 ? State.Done : State.Length;
    } else {
      this.keepAlive = false;
      this.#state = State.Close;
    }
  }

  /** A chunk-size line, the CRLF after a chunk's data, or a trailer line. */
  #readLine(chunk: Buffer, at: number): number {
    const carried = this.#carry?.length ?? 0;
    const nl = chunk.indexOf(10, at);
    const limit = this.#state === State.Trailers ? MAX_HEAD : MAX_CHUNK_LINE;
    if (nl === -1) {
      if (carried + chunk.length - at > limit) throw bad('chunk line too long');
      this.#carry = carried === 0 ? chunk.subarray(at) : Buffer.concat([this.#carry!, chunk.subarray(at)]);
      return chunk.length;
    }
    const lineBuf =
      carried === 0 ? chunk.subarray(at, nl + 1) : Buffer.concat([this.#carry!, chunk.subarray(at, nl + 1)]);
    this.#carry = undefined;
    if (lineBuf.length < 2 || lineBuf[lineBuf.length - 2] !== 13) throw bad('bare LF in chunked body');
    if (lineBuf.length > limit) throw bad('chunk line too long');
    const line = lineBuf.toString('latin1', 0, lineBuf.length - 2);
    if (this.#state === State.ChunkEnd) {
      if (line !== '') throw bad('chunk data longer than its size');
      this.#state = State.ChunkSize;
    } else if (this.#state === State.ChunkSize) {
      const m = CHUNK_SIZE.exec(line);
      if (m === null || FIELD_CTL.test(line)) throw bad('malformed chunk size');
      this.#remaining = Number.parseInt(m[1]!, 16);
      this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
      this.#trailerBytes = 0;
    } else {
      // Trailers are read for framing and dropped (the balancer does not forward them).
      if (line === '') this.#state = State.Done;
      else {
        this.#trailerBytes += lineBuf.length;
        if (this.#trailerBytes > MAX_HEAD) throw bad(`trailers over ${MAX_HEAD} bytes`);
        fieldLine(line, 'trailer');
      }
    }
    return nl + 1;
  }
}
