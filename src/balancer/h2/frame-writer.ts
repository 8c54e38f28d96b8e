import type { TLSSocket } from 'node:tls';
import { CONTINUATION, DATA, END_HEADERS, END_STREAM, frame, HEADERS, writeFrameHeader } from './frame.ts';
import { encodeResponse } from './hpack-encoder.ts';

/** Writes gathered in one turn of the event loop are sent as one buffer below this size, else one by one. */
const CONCAT_LIMIT = 64 * 1024;

function flushWriter(writer: FrameWriter): void {
  writer.flush();
}

/**
 * The sending side of an HTTP/2 session: frames queued during one turn of the event loop (HEADERS and DATA of
 * every stream, control frames) leave in one socket write at its end (`setImmediate`). `congested` tells
 * writers that the socket holds more than it could write; `onCongested` hears of it.
 *
 * @example
 *   const out = new FrameWriter(socket, () => checkUnread());
 *   out.sendHeaders(1, 200, ['content-type', 'text/plain']);
 *   out.sendData(1, Buffer.from('ok'), true);
 */
export class FrameWriter {
  readonly #socket: TLSSocket;
  readonly #onCongested: () => void;
  /** The client's SETTINGS_MAX_FRAME_SIZE. */
  maxFrame = 16_384;
  congested = false;
  #out: Buffer[] = [];
  #bytes = 0;
  #scheduled = false;
  #closed = false;
  /** A SETTINGS_HEADER_TABLE_SIZE the client lowered, to confirm at the start of the next header block. */
  #tableSize = -1;

  constructor(socket: TLSSocket, onCongested: () => void) {
    this.#socket = socket;
    this.#onCongested = onCongested;
  }

  /** Queues a whole frame. */
  send(buf: Buffer): void {
    if (this.#closed) return;
    this.#out.push(buf);
    this.#bytes += buf.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(flushWriter, this);
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    this.#scheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#closed) return;
    const bytes = this.#bytes;
    this.#out = [];
    this.#bytes = 0;
    const socket = this.#socket;
    let ok: boolean;
    if (out.length === 1) ok = socket.write(out[0]!);
    else if (bytes <= CONCAT_LIMIT) ok = socket.write(Buffer.concat(out, bytes));
    else {
      socket.cork();
      ok = true;
      for (const buf of out) ok = socket.write(buf);
      socket.uncork();
    }
    if (!ok) {
      this.congested = true;
      this.#onCongested();
    }
  }

  /** Nothing more is sent (the session is destroyed). */
  close(): void {
    this.#closed = true;
    this.#out = [];
  }

  /** The client lowered its HPACK table: the next header block confirms the size (RFC 7541 §4.2). */
  confirmTableSize(size: number): void {
    this.#tableSize = size;
  }

  /** A response header block: one HEADERS frame, or HEADERS and CONTINUATION when larger than a frame. */
  sendHeaders(id: number, status: number, fields: readonly string[]): void {
    const block = encodeResponse(status, fields, 9, this.#tableSize);
    this.#tableSize = -1;
    const length = block.length - 9;
    const max = this.maxFrame;
    if (length <= max) {
      writeFrameHeader(block, 0, length, HEADERS, END_HEADERS, id);
      this.send(block);
      return;
    }
    const payload = block.subarray(9);
    for (let at = 0; at < length; at += max) {
      const last = at + max >= length;
      const part = payload.subarray(at, Math.min(length, at + max));
      this.send(frame(at === 0 ? HEADERS : CONTINUATION, last ? END_HEADERS : 0, id, part));
    }
  }

  /** A DATA frame (the caller keeps to the flow-control windows and the frame size). */
  sendData(id: number, chunk: Buffer | undefined, end: boolean): void {
    const length = chunk?.length ?? 0;
    if (length > 0 && length <= 1024) {
      // A small body travels in the frame's own buffer: one piece less to gather.
      const buf = Buffer.allocUnsafe(9 + length);
      writeFrameHeader(buf, 0, length, DATA, end ? END_STREAM : 0, id);
      chunk!.copy(buf, 9);
      this.send(buf);
      return;
    }
    const head = Buffer.allocUnsafe(9);
    writeFrameHeader(head, 0, length, DATA, end ? END_STREAM : 0, id);
    this.send(head);
    if (length > 0) this.send(chunk!);
  }
}
