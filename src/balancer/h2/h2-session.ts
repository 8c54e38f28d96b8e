import type { TLSSocket } from 'node:tls';
import { checkRequestFields } from './check-request-fields.ts';
import {
  ACK,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  frame,
  frame32,
  GOAWAY,
  HEADERS,
  MAX_WINDOW,
  PADDED,
  PING,
  PRIORITY,
  PRIORITY_FLAG,
  PUSH_PROMISE,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  settingsFrame,
  WINDOW_UPDATE,
} from './frame.ts';
import { FrameReader } from './frame-reader.ts';
import { FrameWriter } from './frame-writer.ts';
import { H2_CODES, H2ProtocolError, h2Error } from './h2-error.ts';
import { H2Stream } from './h2-stream.ts';
import { HpackDecoder } from './hpack-decoder.ts';
import { WindowCounter } from './window-counter.ts';

/** The session's limits (the balancer's `http2` and `server` options). */
export interface H2Limits {
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxHeaderListSize: number;
  /** Streams that may end abnormally within `resetWindow` (CVE-2023-44487); also the bound on other glitches. */
  maxResets: number;
  resetWindow: number;
  /** Bytes of answers the client may leave unread before the session is cut (flood of PING, SETTINGS...). */
  maxUnread: number;
  /** A session with no stream open closes after this long without a frame. */
  idleTimeout: number;
}

/** What the session hands over: a new stream, its fields, and whether they went past the header list size. */
export type OnStream = (stream: H2Stream, fields: string[], oversize: boolean) => void;

/** Session events the listener reports: abuse (`rapid-reset` or `flood`, answered with GOAWAY(ENHANCE_YOUR_CALM)) and protocol errors. */
export interface H2Hooks {
  onAbuse(session: H2Session, kind: 'rapid-reset' | 'flood', why: string): void;
  onError(session: H2Session, err: H2ProtocolError): void;
  onClose(session: H2Session): void;
}

/** Our receive window for the whole connection (each stream has `initialWindowSize` of it). */
const CONNECTION_WINDOW = 1024 * 1024;
/** A header block (with its CONTINUATION frames) larger than this ends the session (CVE-2024-27316). */
const MAX_BLOCK_FRAMES = 64;
/** How many of the streams we reset are remembered, to ignore what the client still sends on them. */
const RECENT_RESETS = 128;

/**
 * The server side of one HTTP/2 connection (RFC 9113) over a TLS socket that negotiated `h2`: frames,
 * HPACK, streams, flow control in both directions and the limits a front door needs. Requests are handed to
 * `onStream` as `H2Stream`s with their decoded fields; everything written in one turn of the event loop
 * leaves in one socket write.
 *
 * Limits: `maxConcurrentStreams` (more are refused with REFUSED_STREAM); header blocks bounded in size and
 * in CONTINUATION frames; `maxResets` streams that end abnormally, and as many protocol glitches (empty DATA
 * frames, frames for closed streams, PINGs and SETTINGS), per `resetWindow`, past which the session gets
 * GOAWAY(ENHANCE_YOUR_CALM) and is closed; a client that leaves `maxUnread` bytes of our frames unread is
 * cut; a session with no stream and no frame for `idleTimeout` is closed with GOAWAY(NO_ERROR).
 *
 * @example
 *   tlsServer.on('secureConnection', (socket) => {
 *     if (socket.alpnProtocol === 'h2') new H2Session(socket, limits, hooks, (stream, fields) => serve(stream, fields));
 *   });
 */
export class H2Session {
  readonly socket: TLSSocket;
  /** The client's address, read once (a destroyed socket no longer has it). */
  readonly remoteAddress: string | undefined;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE (before the client acknowledges it: the default). */
  localWindow = 65_535;
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE. */
  peerWindow = 65_535;
  /** What we may still send on the connection. */
  sendWindow = 65_535;
  destroyed = false;
  /** Frames to the client; all those of one turn of the event loop leave in one write. */
  readonly out: FrameWriter;
  readonly #limits: H2Limits;
  readonly #hooks: H2Hooks;
  readonly #onStream: OnStream;
  readonly #hpack = new HpackDecoder(4096);
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  readonly #drainWaiters = new Set<H2Stream>();
  /** Streams we reset lately: frames the client sent before it saw the reset are ignored (RFC 9113 §5.1). */
  readonly #reset = new Set<number>();
  readonly #reader: FrameReader;
  readonly #resets: WindowCounter;
  readonly #glitches: WindowCounter;
  #settingsSeen = false;
  #lastId = 0;
  /** A header block waiting for its CONTINUATION frames. */
  #block: { id: number; end: boolean; parts: Buffer[]; size: number } | undefined;
  #recvWindow = CONNECTION_WINDOW;
  #unacked = 0;
  #goaway = false;

  constructor(socket: TLSSocket, limits: H2Limits, hooks: H2Hooks, onStream: OnStream) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.#limits = limits;
    this.#hooks = hooks;
    this.#onStream = onStream;
    this.out = new FrameWriter(socket, () => {
      if (socket.writableLength > limits.maxUnread)
        this.#calm('flood', 'the client reads none of our frames');
    });
    this.#reader = new FrameReader((type, flags, id, payload) => this.#onFrame(type, flags, id, payload));
    this.#resets = new WindowCounter(limits.maxResets, limits.resetWindow);
    this.#glitches = new WindowCounter(limits.maxResets * 10, limits.resetWindow);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    // The socket's inactivity timer (any frame in or out restarts it); a session with a stream open stays.
    socket.setTimeout(limits.idleTimeout, () => {
      if (this.#streams.size === 0) this.close();
    });
    this.send(
      settingsFrame([
        [SETTINGS_MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
        [SETTINGS_INITIAL_WINDOW_SIZE, limits.initialWindowSize],
        [SETTINGS_MAX_HEADER_LIST_SIZE, limits.maxHeaderListSize],
        [SETTINGS_ENABLE_PUSH, 0],
      ]),
    );
    this.send(frame32(WINDOW_UPDATE, 0, CONNECTION_WINDOW - 65_535));
  }

  // --- Output. ---

  /** Queues a frame (see `out`). */
  send(buf: Buffer): void {
    if (!this.destroyed) this.out.send(buf);
  }

  /** A stream has data that waits for a WINDOW_UPDATE. */
  block(stream: H2Stream): void {
    this.#blocked.add(stream);
  }

  /** A stream waits for the socket to drain. */
  waitDrain(stream: H2Stream): void {
    this.#drainWaiters.add(stream);
  }

  #onDrain(): void {
    this.out.congested = false;
    const waiting = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const stream of waiting) stream.pump();
  }

  // --- Life cycle. ---

  /** Graceful close: GOAWAY(NO_ERROR), no new streams; the socket ends when the open streams have. */
  close(): void {
    if (this.destroyed) return;
    this.#sendGoaway(H2_CODES.NO_ERROR);
    if (this.#streams.size === 0) this.#end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.out.close();
    for (const stream of [...this.#streams.values()]) stream.abort(H2_CODES.CANCEL);
    this.socket.destroy();
    this.#hooks.onClose(this);
  }

  #sendGoaway(code: number): void {
    if (this.#goaway) return;
    this.#goaway = true;
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(this.#lastId, 0);
    payload.writeUInt32BE(code, 4);
    this.send(frame(GOAWAY, 0, 0, payload));
  }

  /** Flushes what is queued, then ends the socket (and destroys it if the client does not close its side). */
  #end(): void {
    this.out.flush();
    this.socket.end();
    setTimeout(() => this.destroy(), 1000).unref();
  }

  /** A connection error: GOAWAY with its code, then the socket ends; open streams are abandoned. */
  #fail(err: H2ProtocolError): void {
    if (err.code === H2_CODES.ENHANCE_YOUR_CALM) this.#hooks.onAbuse(this, 'flood', err.message);
    else this.#hooks.onError(this, err);
    this.#sendGoaway(err.code);
    for (const stream of [...this.#streams.values()]) stream.abort(H2_CODES.CANCEL);
    this.#end();
  }

  /** Abuse: GOAWAY(ENHANCE_YOUR_CALM), no new stream; whatever is still open is cut a second later. */
  #calm(kind: 'rapid-reset' | 'flood', why: string): void {
    if (this.#goaway) {
      if (this.socket.writableLength > this.#limits.maxUnread) this.destroy();
      return;
    }
    this.#hooks.onAbuse(this, kind, why);
    this.#sendGoaway(H2_CODES.ENHANCE_YOUR_CALM);
    this.out.flush();
    setTimeout(() => this.destroy(), 1000).unref();
  }

  /** Stream: it closed; one that ended abnormally counts toward the rapid-reset bound. */
  forget(stream: H2Stream, sentReset: boolean): void {
    this.#streams.delete(stream.id);
    if (sentReset) {
      this.#reset.add(stream.id);
      if (this.#reset.size > RECENT_RESETS) this.#reset.delete(this.#reset.values().next().value!);
    }
    this.#blocked.delete(stream);
    this.#drainWaiters.delete(stream);
    if (stream.rstCode !== H2_CODES.NO_ERROR && !this.destroyed && this.#resets.hit())
      this.#calm('rapid-reset', 'too many streams reset');
    if (this.#goaway && this.#streams.size === 0 && !this.destroyed) this.#end();
  }

  /** A frame that costs us work and serves no request; too many per window is abuse. */
  #glitch(): void {
    if (this.#glitches.hit()) this.#calm('flood', 'too many empty or useless frames');
  }

  // --- Input. ---

  #onData(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      this.#reader.read(chunk);
    } catch (err) {
      if (err instanceof H2ProtocolError) this.#fail(err);
      else {
        // A fault of ours (a body reader threw): the session's state cannot be trusted; it ends, the
        // process does not.
        this.#hooks.onError(this, h2Error('INTERNAL_ERROR', `session failed: ${(err as Error).message}`));
        this.destroy();
      }
    }
  }

  /** One frame from the reader; a stream error resets that stream and the session goes on. */
  #onFrame(type: number, flags: number, id: number, payload: Buffer): boolean {
    try {
      this.#frame(type, flags, id, payload);
    } catch (err) {
      if (!(err instanceof H2ProtocolError) || err.stream === 0) throw err;
      const stream = this.#streams.get(err.stream);
      if (stream !== undefined) stream.close(err.code);
      else this.send(frame32(RST_STREAM, err.stream, err.code));
    }
    return !this.destroyed;
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.#settingsSeen && type !== SETTINGS) throw h2Error('PROTOCOL_ERROR', 'first frame not SETTINGS');
    if (this.#block !== undefined && type !== CONTINUATION)
      throw h2Error('PROTOCOL_ERROR', 'a header block was interrupted');
    switch (type) {
      case DATA:
        this.#data(flags, id, payload);
        return;
      case HEADERS:
        this.#headers(flags, id, payload);
        return;
      case CONTINUATION:
        this.#continuation(flags, id, payload);
        return;
      case RST_STREAM:
        this.#rstStream(id, payload);
        return;
      case SETTINGS:
        this.#settings(flags, id, payload);
        return;
      case PING:
        if (id !== 0) throw h2Error('PROTOCOL_ERROR', 'PING on a stream');
        if (payload.length !== 8) throw h2Error('FRAME_SIZE_ERROR', 'PING not 8 bytes');
        if ((flags & ACK) === 0) {
          this.#glitch();
          this.send(frame(PING, ACK, 0, payload));
        }
        return;
      case GOAWAY:
        if (id !== 0) throw h2Error('PROTOCOL_ERROR', 'GOAWAY on a stream');
        this.close();
        return;
      case WINDOW_UPDATE:
        this.#windowUpdate(id, payload);
        return;
      case PRIORITY:
        if (id === 0) throw h2Error('PROTOCOL_ERROR', 'PRIORITY on stream 0');
        if (payload.length !== 5) throw h2Error('FRAME_SIZE_ERROR', 'PRIORITY not 5 bytes', id);
        return;
      case PUSH_PROMISE:
        throw h2Error('PROTOCOL_ERROR', 'PUSH_PROMISE from a client');
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  /** Removes padding (and the priority fields of HEADERS). */
  #unpad(flags: number, payload: Buffer, priority: boolean): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      if (end < 1) throw h2Error('FRAME_SIZE_ERROR', 'padded frame without its length');
      end -= payload[0]!;
      start = 1;
    }
    if (priority) start += 5;
    if (end < start) throw h2Error('PROTOCOL_ERROR', 'padding longer than the frame');
    return payload.subarray(start, end);
  }

  #data(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw h2Error('PROTOCOL_ERROR', 'DATA on stream 0');
    const length = payload.length;
    this.#recvWindow -= length;
    if (this.#recvWindow < 0) throw h2Error('FLOW_CONTROL_ERROR', 'DATA beyond the connection window');
    this.#unacked += length;
    if (this.#unacked >= CONNECTION_WINDOW / 2) {
      this.send(frame32(WINDOW_UPDATE, 0, this.#unacked));
      this.#recvWindow += this.#unacked;
      this.#unacked = 0;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (id > this.#lastId) throw h2Error('PROTOCOL_ERROR', 'DATA on an idle stream');
      if (this.#reset.has(id)) return;
      this.#glitch();
      throw h2Error('STREAM_CLOSED', 'DATA on a closed stream', id);
    }
    const data = this.#unpad(flags, payload, false);
    const end = (flags & END_STREAM) !== 0;
    if (data.length === 0 && !end) this.#glitch();
    stream.receive(data, end, length);
  }

  #headers(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || id % 2 === 0) throw h2Error('PROTOCOL_ERROR', `HEADERS on stream ${id}`);
    const fragment = this.#unpad(flags, payload, (flags & PRIORITY_FLAG) !== 0);
    const end = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.#headerBlock(id, end, fragment);
    else this.#block = { id, end, parts: [fragment], size: fragment.length };
  }

  #continuation(flags: number, id: number, payload: Buffer): void {
    const block = this.#block;
    if (block === undefined || block.id !== id) throw h2Error('PROTOCOL_ERROR', 'CONTINUATION out of place');
    block.parts.push(payload);
    block.size += payload.length;
    // CONTINUATION floods (CVE-2024-27316): a block may not grow past the header list limit, nor take
    // many frames to get there.
    if (block.size > this.#limits.maxHeaderListSize * 2 || block.parts.length > MAX_BLOCK_FRAMES)
      throw h2Error('ENHANCE_YOUR_CALM', 'header block too large');
    if (flags & END_HEADERS) {
      this.#block = undefined;
      this.#headerBlock(id, block.end, Buffer.concat(block.parts, block.size));
    }
  }

  #headerBlock(id: number, end: boolean, block: Buffer): void {
    const fields: string[] = [];
    // Decoded even when refused: the HPACK table must follow every block.
    const size = this.#hpack.decode(block, fields, this.#limits.maxHeaderListSize);
    const open = this.#streams.get(id);
    if (open !== undefined) {
      // Trailers: they end the request.
      if (!end) throw h2Error('PROTOCOL_ERROR', 'trailers without END_STREAM', id);
      open.remoteEnd();
      return;
    }
    if (id <= this.#lastId) {
      if (this.#reset.has(id)) return;
      throw h2Error('STREAM_CLOSED', `HEADERS on closed stream ${id}`);
    }
    this.#lastId = id;
    if (this.#goaway) return;
    if (this.#streams.size >= this.#limits.maxConcurrentStreams) {
      this.#glitch();
      throw h2Error('REFUSED_STREAM', 'too many streams', id);
    }
    const oversize = size > this.#limits.maxHeaderListSize;
    const facts = oversize ? { malformed: undefined, contentLength: -1 } : checkRequestFields(fields);
    // A declared body that never comes: the clone would wait for it (RFC 9113 §8.1.1).
    if (end && facts.contentLength > 0) facts.malformed ??= 'content-length without DATA';
    const stream = new H2Stream(this, id, end, end ? -1 : facts.contentLength);
    this.#streams.set(id, stream);
    if (facts.malformed !== undefined) {
      stream.close(H2_CODES.PROTOCOL_ERROR);
      return;
    }
    try {
      this.#onStream(stream, fields, oversize);
    } catch (err) {
      // A fault of ours must not end the process, nor the client's other streams.
      this.#hooks.onError(
        this,
        h2Error('INTERNAL_ERROR', `stream handler threw: ${(err as Error).message}`, id),
      );
      stream.close(H2_CODES.INTERNAL_ERROR);
    }
  }

  #rstStream(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw h2Error('FRAME_SIZE_ERROR', 'RST_STREAM not 4 bytes');
    if (id === 0 || id > this.#lastId) throw h2Error('PROTOCOL_ERROR', 'RST_STREAM on an idle stream');
    this.#streams.get(id)?.abort(payload.readUInt32BE(0));
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw h2Error('PROTOCOL_ERROR', 'SETTINGS on a stream');
    if (flags & ACK) {
      if (payload.length !== 0) throw h2Error('FRAME_SIZE_ERROR', 'SETTINGS ACK with a payload');
      // The client now keeps to our initial window, for the streams already open too (RFC 9113 §6.9.2).
      const delta = this.#limits.initialWindowSize - this.localWindow;
      this.localWindow = this.#limits.initialWindowSize;
      if (delta !== 0) for (const stream of this.#streams.values()) stream.recvWindow += delta;
      return;
    }
    if (payload.length % 6 !== 0) throw h2Error('FRAME_SIZE_ERROR', 'SETTINGS not a multiple of 6');
    if (this.#settingsSeen) this.#glitch();
    this.#settingsSeen = true;
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (key === SETTINGS_ENABLE_PUSH && value > 1)
        throw h2Error('PROTOCOL_ERROR', 'ENABLE_PUSH not 0 or 1');
      // Our encoder keeps no table, but a client that shrinks its own expects to see the size confirmed.
      if (key === SETTINGS_HEADER_TABLE_SIZE && value < 4096) this.out.confirmTableSize(value);
      if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw h2Error('FLOW_CONTROL_ERROR', 'INITIAL_WINDOW_SIZE too large');
        const delta = value - this.peerWindow;
        this.peerWindow = value;
        for (const stream of this.#streams.values()) stream.adjustWindow(delta);
      } else if (key === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) throw h2Error('PROTOCOL_ERROR', 'bad MAX_FRAME_SIZE');
        this.out.maxFrame = value;
      }
    }
    this.send(frame(SETTINGS, ACK, 0));
    this.#unblock();
  }

  #windowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw h2Error('FRAME_SIZE_ERROR', 'WINDOW_UPDATE not 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw h2Error('PROTOCOL_ERROR', 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw h2Error('FLOW_CONTROL_ERROR', 'connection window too large');
      this.#unblock();
      return;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (id > this.#lastId) throw h2Error('PROTOCOL_ERROR', 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (increment === 0) throw h2Error('PROTOCOL_ERROR', 'WINDOW_UPDATE of 0', id);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) throw h2Error('FLOW_CONTROL_ERROR', 'stream window too large', id);
    stream.pump();
  }

  /** Windows opened: the streams that waited send what they now may. */
  #unblock(): void {
    if (this.#blocked.size === 0) return;
    const waiting = [...this.#blocked];
    this.#blocked.clear();
    for (const stream of waiting) {
      if (this.sendWindow <= 0) {
        this.#blocked.add(stream);
        continue;
      }
      stream.pump();
    }
  }
}
