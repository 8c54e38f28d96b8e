import type { IncomingMessage } from 'node:http';

/** Where a request body goes: the upstream connection's writer (a Writable would do too). */
export interface BodySink {
  /** False: the sink is full; wait for 'drain'. */
  write(chunk: Buffer): boolean;
  end(): void;
  once(event: 'drain', fn: () => void): unknown;
}

export interface BodyPace {
  /** Time for the body to arrive, extended by one second per `minRate` bytes received (ms). */
  timeout: number;
  /** Bytes per second that earn one more second; 0 turns the rate rule off. */
  minRate: number;
  /** Longest pause between two chunks (ms). */
  idleTimeout: number;
}

/**
 * A request body on its way through the balancer. It streams the body to the current upstream request while
 * keeping a copy of the first `replayLimit` bytes, so that a retry can send it again, and it paces the client:
 * a body that stalls for `idleTimeout`, or arrives slower than Apache mod_reqtimeout's rule allows (`timeout`
 * plus one second per `minRate` bytes), is reported through `onSlow`, so one slow upload cannot hold a
 * connection to a clone for minutes. The body is only read while it has somewhere to go (or is being
 * buffered on purpose): time the balancer holds it back, waiting for a clone, is not the client's.
 *
 * @example
 *   const body = new RequestBody(req, 64 * 1024, { timeout: 20_000, minRate: 500, idleTimeout: 30_000 },
 *     (why) => cut(why));
 *   body.attach(upstreamRequest);
 *   // upstream failed before answering:
 *   body.detach();
 *   if (body.replayable) body.attach(nextUpstreamRequest);
 *   body.dispose(); // when the exchange is over
 */
export class RequestBody {
  readonly #src: IncomingMessage;
  readonly #limit: number;
  readonly #pace: BodyPace;
  readonly #onSlow: (why: string) => void;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #overflow = false;
  #ended = false;
  #reading = false;
  #sink: BodySink | undefined;
  #onComplete: (() => void) | undefined;
  /** Deadlines of the pace rules, in ms since the epoch; moved forward by time spent held back. */
  #deadline = 0;
  #idleDeadline = 0;
  #heldSince = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(src: IncomingMessage, replayLimit: number, pace: BodyPace, onSlow: (why: string) => void) {
    this.#src = src;
    this.#limit = replayLimit;
    this.#pace = pace;
    this.#onSlow = onSlow;
  }

  /** False once more than `replayLimit` bytes went by: the body cannot be sent a second time. */
  get replayable(): boolean {
    return !this.#overflow;
  }

  /** The whole body has arrived. */
  get complete(): boolean {
    return this.#ended;
  }

  /**
   * Reads the whole body before any clone is involved (a small body, known to fit in `replayLimit`), then
   * calls `onComplete`; a slow client then holds no connection to a clone at all.
   */
  buffer(onComplete: () => void): void {
    this.#onComplete = onComplete;
    this.#read();
  }

  /** Calls `fn` once the body has been read to its end (at once if it has). */
  onComplete(fn: () => void): void {
    if (this.#ended) fn();
    else this.#onComplete = fn;
  }

  attach(sink: BodySink): void {
    this.#sink = sink;
    for (const chunk of this.#chunks) sink.write(chunk);
    if (this.#ended) {
      sink.end();
      return;
    }
    this.#read();
    this.#release();
  }

  /** Stops sending to the current sink; the client is held back until the next `attach`. */
  detach(): void {
    this.#sink = undefined;
    if (!this.#ended) this.#hold();
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sink = undefined;
  }

  #read(): void {
    if (this.#reading) return;
    this.#reading = true;
    const now = Date.now();
    this.#deadline = now + this.#pace.timeout;
    this.#idleDeadline = now + this.#pace.idleTimeout;
    this.#src.on('data', this.#onData);
    this.#src.on('end', this.#onEnd);
    this.#arm(now);
  }

  /** The client is held back by us (no sink, or the sink is full): its clock stops. */
  #hold(): void {
    if (this.#heldSince !== 0) return;
    this.#heldSince = Date.now();
    this.#src.pause();
  }

  #release(): void {
    if (this.#heldSince !== 0) {
      const held = Date.now() - this.#heldSince;
      this.#heldSince = 0;
      this.#deadline += held;
      this.#idleDeadline += held;
    }
    if (this.#src.isPaused()) this.#src.resume();
  }

  #arm(now: number): void {
    const at = Math.min(this.#deadline, this.#idleDeadline);
    this.#timer = setTimeout(this.#check, Math.max(10, at - now));
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.#ended) return;
    const now = Date.now();
    if (this.#heldSince !== 0) {
      // Held back by us: the clock is stopped; look again later.
      this.#timer = setTimeout(this.#check, 1000);
      return;
    }
    if (now >= this.#idleDeadline) {
      this.#onSlow(`stalled for ${this.#pace.idleTimeout} ms`);
      return;
    }
    if (now >= this.#deadline) {
      this.#onSlow(`arrived slower than ${this.#pace.minRate} bytes/s`);
      return;
    }
    this.#arm(now);
  };

  readonly #onData = (chunk: Buffer): void => {
    const now = Date.now();
    this.#idleDeadline = now + this.#pace.idleTimeout;
    if (this.#pace.minRate > 0) this.#deadline += (chunk.length * 1000) / this.#pace.minRate;
    else this.#deadline = Number.POSITIVE_INFINITY;
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
      this.#hold();
      sink.once('drain', () => {
        if (this.#sink === sink) this.#release();
      });
    }
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sink?.end();
    const done = this.#onComplete;
    this.#onComplete = undefined;
    done?.();
  };
}
