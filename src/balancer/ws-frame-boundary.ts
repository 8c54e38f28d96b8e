/**
 * Follows the frames of one direction of a WebSocket byte stream (RFC 6455 section 5.2) without buffering
 * them, so the balancer knows when it stands between two frames: the only place where it may insert a frame
 * of its own (the close frame sent when a drained clone's sockets are ended) without corrupting the stream.
 *
 * @example
 *   const frames = new WsFrameBoundary();
 *   upstream.on('data', (chunk) => { frames.feed(chunk); client.write(chunk); });
 *   if (frames.atBoundary) client.end(closeFrame);
 */
export class WsFrameBoundary {
  /** Payload bytes of the current frame still to come. */
  #payloadLeft = 0;
  /** Header bytes seen of a frame whose header is split across chunks. */
  #header: number[] = [];

  /** True between frames: no header or payload half-read. */
  get atBoundary(): boolean {
    return this.#payloadLeft === 0 && this.#header.length === 0;
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.length - i);
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      this.#header.push(chunk[i++]!);
      const length = headerLength(this.#header);
      if (length === undefined || this.#header.length < length) continue;
      this.#payloadLeft = payloadLength(this.#header);
      this.#header = [];
    }
  }
}

/** The whole header's size once its first two bytes are known: 2, plus the extended length, plus the mask. */
function headerLength(h: number[]): number | undefined {
  if (h.length < 2) return undefined;
  const len7 = h[1]! & 0x7f;
  const masked = (h[1]! & 0x80) !== 0;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
}

function payloadLength(h: number[]): number {
  const len7 = h[1]! & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return (h[2]! << 8) | h[3]!;
  // 64-bit length; anything past 2^53 is not a stream we will ever finish relaying.
  let n = 0;
  for (let k = 2; k < 10; k++) n = n * 256 + h[k]!;
  return n;
}
