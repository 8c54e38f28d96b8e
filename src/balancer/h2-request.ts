import { Http2ServerRequest } from 'node:http2';

/** Node's own getter, which returns the list with pseudo-headers. */
const nodeRawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get as (
  this: Http2ServerRequest,
) => string[];

/** Connection-specific fields, which HTTP/2 forbids in requests and responses (RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * An HTTP/2 request as the HTTP/1.1 proxy path reads it. Its `rawHeaders` carry no pseudo-headers: `:authority`
 * becomes Host (RFC 9113 §8.3.1), and a body without Content-Length is declared chunked, which is how it
 * goes on to the clone over HTTP/1.1. It is checked as an HTTP/1.1 request (`httpVersionMinor` 1): Host is
 * then required and request hygiene applies unchanged. `refusal` names what HTTP/2 itself forbids.
 *
 * @example
 *   http2.createSecureServer({ Http2ServerRequest: H2Request, allowHTTP1: true });
 */
export class H2Request extends Http2ServerRequest {
  #raw: string[] | undefined = undefined;
  #refusal: string | undefined = undefined;

  constructor(...args: ConstructorParameters<typeof Http2ServerRequest>) {
    super(...args);
    // Node ends the request stream even when the client reset it (or nghttp2 did, for a content-length that
    // does not match the DATA frames): without this, a truncated body would look complete to the proxy.
    this.stream.once('aborted', () => {
      if (!this.readableEnded) this.destroy();
    });
  }

  /** A connection-specific field, or TE other than "trailers" (RFC 9113 §8.2.2): the request is malformed. */
  get refusal(): string | undefined {
    if (this.#raw === undefined) this.#map();
    return this.#refusal;
  }

  /** The mapped header list; `rawHeaders` reads it (see below). */
  mappedHeaders(): string[] {
    if (this.#raw === undefined) this.#map();
    return this.#raw!;
  }

  #map(): void {
    const src = nodeRawHeaders.call(this);
    const out: string[] = [];
    let authority: string | undefined;
    let host = false;
    let length = false;
    for (let i = 0; i < src.length; i += 2) {
      const name = src[i]!;
      const value = src[i + 1]!;
      if (name.charCodeAt(0) === 0x3a /* : */) {
        if (name === ':authority') authority = value;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(name)) this.#refusal ??= 'h2-connection-specific-header';
      else if (name === 'te' && value.trim().toLowerCase() !== 'trailers')
        this.#refusal ??= 'h2-te-not-trailers';
      else if (name === 'host') host = true;
      else if (name === 'content-length') length = true;
      out.push(name, value);
    }
    if (!host && authority !== undefined) out.push('host', authority);
    if (!length && !this.stream.endAfterHeaders) out.push('transfer-encoding', 'chunked');
    this.#raw = out;
  }
}

// Node declares these as accessors on the prototype, TypeScript as plain fields: replace them the same way.
Object.defineProperties(H2Request.prototype, {
  rawHeaders: {
    get(this: H2Request) {
      return this.mappedHeaders();
    },
  },
  httpVersionMinor: { value: 1 },
});
