import { PREFACE } from './frame.ts';
import { h2Error } from './h2-error.ts';

/** Our SETTINGS_MAX_FRAME_SIZE: the default (RFC 9113 §4.2). */
const MAX_FRAME = 16_384;

/** Called for each whole frame; false stops the reading (the session ended). */
export type OnFrame = (type: number, flags: number, stream: number, payload: Buffer) => boolean;

/**
 * Cuts a client's byte stream into HTTP/2 frames (RFC 9113 §4.1) after checking the connection preface
 * (§3.4). A frame longer than 16,384 bytes is a FRAME_SIZE_ERROR (thrown, for the session to answer). A frame
 * split over reads is kept as a list of pieces and joined once, when its length says all of it is here: a
 * client that drips a frame a byte per TLS record does not make us copy it again on every read. Payloads are
 * slices of the socket's buffers.
 *
 * @example
 *   const reader = new FrameReader((type, flags, id, payload) => { handle(type, flags, id, payload); return true; });
 *   socket.on('data', (chunk) => reader.read(chunk));
 */
export class FrameReader {
  readonly #onFrame: OnFrame;
  #preface = false;
  #rest: Buffer[] = [];
  #restBytes = 0;
  #need = 0;

  constructor(onFrame: OnFrame) {
    this.#onFrame = onFrame;
  }

  read(chunk: Buffer): void {
    let buf = chunk;
    if (this.#rest.length > 0) {
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
      if (this.#restBytes < this.#need) return;
      buf = Buffer.concat(this.#rest, this.#restBytes);
      this.#rest = [];
      this.#restBytes = 0;
    }
    let pos = 0;
    if (!this.#preface) {
      if (buf.length < PREFACE.length) {
        if (!PREFACE.subarray(0, buf.length).equals(buf)) throw h2Error('PROTOCOL_ERROR', 'no preface');
        this.#keep(buf, PREFACE.length);
        return;
      }
      if (!buf.subarray(0, PREFACE.length).equals(PREFACE)) throw h2Error('PROTOCOL_ERROR', 'no preface');
      this.#preface = true;
      pos = PREFACE.length;
    }
    while (buf.length - pos >= 9) {
      const length = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
      if (length > MAX_FRAME) throw h2Error('FRAME_SIZE_ERROR', `frame of ${length} bytes`);
      if (buf.length - pos - 9 < length) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      const payload = buf.subarray(pos + 9, pos + 9 + length);
      pos += 9 + length;
      if (!this.#onFrame(type, flags, id, payload)) return;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      this.#keep(rest, rest.length < 9 ? 9 : 9 + ((rest[0]! << 16) | (rest[1]! << 8) | rest[2]!));
    }
  }

  /** Keeps the start of a frame (or of the preface) until `need` bytes of it have come. */
  #keep(part: Buffer, need: number): void {
    this.#rest = [part];
    this.#restBytes = part.length;
    this.#need = need;
  }
}
