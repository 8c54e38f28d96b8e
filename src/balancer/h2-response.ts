import type { OutgoingHttpHeaders } from 'node:http';
import { H2_CODES } from './h2/h2-error.ts';
import type { H2Stream } from './h2/h2-stream.ts';
import { CONNECTION_SPECIFIC } from './h2-request.ts';

type Fields = OutgoingHttpHeaders | (string | number)[];

/**
 * An HTTP/2 response written straight on the session's stream: the part of `http.ServerResponse` that the
 * proxy path uses (writeHead, write, end, destroy, 'close', 'drain', 'finish'). It takes what the HTTP/1.1
 * path writes: the reason phrase is dropped (HTTP/2 has none), and so are connection-specific fields such as
 * `connection: close` on an error answer (RFC 9113 §8.2.2). Field names are sent in lower case; a repeated
 * field is sent as repeated fields, which HTTP/2 allows (and Set-Cookie needs).
 *
 * @example
 *   const res = new H2Response(stream);
 *   res.writeHead(200, undefined, ['content-type', 'text/plain']);
 *   res.end('ok');
 */
export class H2Response {
  readonly stream: H2Stream;
  /** Kept for the HTTP/1.1 callers; an HTTP/2 stream ends on its own, the session stays open. */
  shouldKeepAlive = true;
  #extra: string[] | undefined = undefined;
  #length: string | undefined = undefined;

  constructor(stream: H2Stream) {
    this.stream = stream;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.closed;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  /** A field for the response still to be written (the balancer's own, such as HSTS). */
  setHeader(name: string, value: string): this {
    this.#extra ??= [];
    this.#extra.push(name.toLowerCase(), value);
    return this;
  }

  /** Only Content-Length is asked for (the access log's size of the balancer's own answers). */
  getHeader(name: string): string | undefined {
    return name.toLowerCase() === 'content-length' ? this.#length : undefined;
  }

  writeHead(status: number, message?: string | Fields, fields?: Fields): this {
    const given = typeof message === 'string' ? fields : (message ?? fields);
    const out: string[] = this.#extra === undefined ? [] : [...this.#extra];
    if (Array.isArray(given)) {
      for (let i = 0; i < given.length; i += 2) this.#add(out, String(given[i]), String(given[i + 1]));
    } else if (given !== undefined) {
      for (const name in given) {
        const value = given[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const one of value) this.#add(out, name, one);
        else this.#add(out, name, String(value));
      }
    }
    this.stream.respond(status, out);
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (!this.stream.headersSent) this.writeHead(200);
    return this.stream.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }

  /**
   * Ends the response. A request body still arriving (the clone answered before reading it all, or the
   * balancer refused the request) is then stopped with RST_STREAM(NO_ERROR) once the answer is out (RFC 9113
   * §8.1), so the upload does not hold the stream open.
   */
  end(body?: Buffer | string): this {
    const stream = this.stream;
    if (!stream.headersSent) this.writeHead(200);
    const done = stream.endAfterHeaders || stream.readableEnded ? undefined : () => stopUpload(stream);
    stream.end(typeof body === 'string' ? Buffer.from(body) : body, done);
    return this;
  }

  /** The answer cannot be completed: the client must see a reset stream, not a short body. */
  destroy(): this {
    this.stream.close(H2_CODES.INTERNAL_ERROR);
    return this;
  }

  /** 'close', 'drain' and 'finish' of the stream, with `this` the response (as Node's ServerResponse). */
  on(event: string, fn: (this: H2Response) => void): this {
    this.stream.on(event, () => fn.call(this));
    return this;
  }

  once(event: string, fn: (this: H2Response) => void): this {
    this.stream.once(event, () => fn.call(this));
    return this;
  }

  /** Adds a response field in lower case, dropping the connection-specific ones. */
  #add(out: string[], name: string, value: string): void {
    const lower = name.toLowerCase();
    if (CONNECTION_SPECIFIC.has(lower)) return;
    if (lower === 'content-length') this.#length = value;
    out.push(lower, value);
  }
}

function stopUpload(stream: H2Stream): void {
  if (!stream.closed && !stream.readableEnded) stream.close(H2_CODES.NO_ERROR);
}
