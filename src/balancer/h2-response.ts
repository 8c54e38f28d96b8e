import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { CONNECTION_SPECIFIC } from './h2-request.ts';

type Fields = OutgoingHttpHeaders | (string | number)[];

/**
 * An HTTP/2 response written straight on the stream: the part of `http.ServerResponse` that the proxy path
 * uses (writeHead, write, end, destroy, 'close', 'drain', 'finish'). It takes what the HTTP/1.1 path writes:
 * the reason phrase is dropped (HTTP/2 has none), and so are connection-specific fields such as
 * `connection: close` on an error answer, which Node would refuse. Field names are sent in lower case, and a
 * repeated field is sent as one list (Set-Cookie as separate fields).
 *
 * @example
 *   const res = new H2Response(stream);
 *   res.writeHead(200, undefined, ['content-type', 'text/plain']);
 *   res.end('ok');
 */
export class H2Response {
  readonly stream: ServerHttp2Stream;
  /** Kept for the HTTP/1.1 callers; an HTTP/2 stream ends on its own, the session stays open. */
  shouldKeepAlive = true;
  #extra: Record<string, string> | undefined = undefined;
  #length: string | number | undefined = undefined;

  constructor(stream: ServerHttp2Stream) {
    this.stream = stream;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  /** A field for the response still to be written (the balancer's own, such as HSTS). */
  setHeader(name: string, value: string): this {
    this.#extra ??= {};
    this.#extra[name.toLowerCase()] = value;
    return this;
  }

  /** Only Content-Length is asked for (the access log's size of the balancer's own answers). */
  getHeader(name: string): string | number | undefined {
    return name.toLowerCase() === 'content-length' ? this.#length : this.#extra?.[name.toLowerCase()];
  }

  writeHead(status: number, message?: string | Fields, fields?: Fields): this {
    const given = typeof message === 'string' ? fields : (message ?? fields);
    const out: OutgoingHttpHeaders = { ':status': status };
    if (this.#extra !== undefined) Object.assign(out, this.#extra);
    if (Array.isArray(given)) {
      for (let i = 0; i < given.length; i += 2)
        add(out, String(given[i]).toLowerCase(), String(given[i + 1]));
    } else if (given !== undefined) {
      for (const name in given) {
        const value = given[name];
        if (value !== undefined) add(out, name.toLowerCase(), Array.isArray(value) ? value : String(value));
      }
    }
    this.#length = out['content-length'] as string | undefined;
    if (open(this.stream)) this.stream.respond(out);
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (!open(this.stream)) return true;
    if (!this.stream.headersSent) this.writeHead(200);
    return this.stream.write(chunk);
  }

  /**
   * Ends the response. A request body still arriving (the clone answered before reading it all, or the
   * balancer refused the request) is then stopped with RST_STREAM(NO_ERROR) once the answer is out (RFC 9113
   * §8.1), so the upload does not hold the stream open.
   */
  end(body?: Buffer | string): this {
    const stream = this.stream;
    if (!open(stream)) return this;
    if (!stream.headersSent) this.writeHead(200);
    const done = stream.endAfterHeaders || stream.readableEnded ? undefined : () => stopUpload(stream);
    if (body === undefined) stream.end(done);
    else stream.end(body, done);
    return this;
  }

  /** The answer cannot be completed: the client must see a reset stream, not a short body. */
  destroy(): this {
    if (open(this.stream)) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
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
}

/**
 * Whether the stream can still take a response: Node throws on `respond` once the client has reset it (closed)
 * or it was destroyed, and a late answer (a queue deadline, a clone's reply) must not throw from a timer.
 */
function open(stream: ServerHttp2Stream): boolean {
  return !stream.destroyed && !stream.closed;
}

function stopUpload(stream: ServerHttp2Stream): void {
  if (open(stream) && !stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
}

/** Adds a response field, dropping the connection-specific ones and joining repeats. */
function add(out: OutgoingHttpHeaders, name: string, value: string | string[]): void {
  if (CONNECTION_SPECIFIC.has(name)) return;
  const had = out[name];
  if (had === undefined) out[name] = value;
  else if (name === 'set-cookie') out[name] = ([] as string[]).concat(had as string | string[], value);
  else out[name] = `${had}, ${Array.isArray(value) ? value.join(', ') : value}`;
}
