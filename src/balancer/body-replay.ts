import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';

/**
 * Streams a request body to the current upstream request while keeping a copy of the first `limit` bytes, so
 * a retry can send the body again. Bodies larger than `limit` stream as usual but cannot be replayed.
 *
 * @example
 *   const replay = new BodyReplay(req, 64 * 1024);
 *   replay.attach(upstreamRequest);
 *   // upstream failed before answering:
 *   replay.detach();
 *   if (replay.replayable) replay.attach(nextUpstreamRequest);
 */
export class BodyReplay {
  readonly #src: IncomingMessage;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #overflow = false;
  #ended = false;
  #sink: Writable | undefined;

  constructor(src: IncomingMessage, limit: number) {
    this.#src = src;
    this.#limit = limit;
    src.on('data', this.#onData);
    src.on('end', this.#onEnd);
  }

  get replayable(): boolean {
    return !this.#overflow;
  }

  attach(sink: Writable): void {
    this.#sink = sink;
    for (const chunk of this.#chunks) sink.write(chunk);
    if (this.#ended) sink.end();
    else if (this.#src.isPaused()) this.#src.resume();
  }

  detach(): void {
    this.#sink = undefined;
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.#overflow) {
      this.#bytes += chunk.length;
      if (this.#bytes > this.#limit) {
        this.#overflow = true;
        this.#chunks = [];
      } else {
        this.#chunks.push(chunk);
      }
    }
    const sink = this.#sink;
    if (sink && !sink.write(chunk)) {
      this.#src.pause();
      sink.once('drain', () => {
        if (this.#sink === sink) this.#src.resume();
      });
    }
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#sink?.end();
  };
}
