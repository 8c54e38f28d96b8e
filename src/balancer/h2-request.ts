import type { IncomingHttpHeaders } from 'node:http';
import type { H2Stream } from './h2/h2-stream.ts';

/** The client connection as the proxy path reads it (`forwardContext` keeps its findings on it). */
export interface H2Peer {
  readonly remoteAddress: string | undefined;
  readonly encrypted: true;
}

const kPeer = Symbol('clones.h2peer');

/** The session's client, shared by its streams (made once per session). */
function peerOf(session: H2Stream['session'] & { [kPeer]?: H2Peer }): H2Peer {
  let peer = session[kPeer];
  if (peer === undefined) {
    peer = { remoteAddress: session.remoteAddress, encrypted: true };
    session[kPeer] = peer;
  }
  return peer;
}

/** Connection-specific fields, which HTTP/2 forbids in requests and responses (RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * An HTTP/2 request as the HTTP/1.1 proxy path reads it, made straight from the session's stream and its
 * decoded fields. It answers the part of
 * `http.IncomingMessage` that the proxy path uses. Its `rawHeaders` carry no pseudo-headers: `:authority`
 * becomes Host (RFC 9113 §8.3.1; a Host that names another authority is refused), split Cookie fields are
 * joined into one (§8.2.3), and a body without Content-Length is declared chunked, which is how it goes
 * on to the clone over HTTP/1.1. It is checked as an HTTP/1.1 request (`httpVersionMinor` 1): Host is then
 * required and request hygiene applies unchanged. `refusal` names what HTTP/2 itself forbids. The body is
 * read from the stream; a stream the client resets (or the session resets, for a content-length that does not
 * match the DATA frames) never ends, so a truncated body never looks complete. `headers` is built only
 * when asked for (the access log reads it).
 *
 * @example
 *   new H2Session(socket, limits, hooks, (stream, fields) => handle(new H2Request(stream, fields), ...));
 */
export class H2Request {
  readonly stream: H2Stream;
  readonly method: string;
  readonly url: string;
  readonly httpVersion = '2.0';
  readonly httpVersionMajor = 2;
  /** Checked as HTTP/1.1 (see above). */
  readonly httpVersionMinor = 1;
  readonly rawHeaders: string[];
  /** The client's TLS connection, shared by every stream of the session. */
  readonly socket: H2Peer;
  /** A connection-specific field, or TE other than "trailers" (RFC 9113 §8.2.2): the request is malformed. */
  readonly refusal: string | undefined;

  #headers: IncomingHttpHeaders | undefined;

  constructor(stream: H2Stream, raw: string[]) {
    this.stream = stream;
    this.socket = peerOf(stream.session);
    let method = '';
    let path: string | undefined;
    const out: string[] = [];
    let refusal: string | undefined;
    let authority: string | undefined;
    let host: string | undefined;
    let cookie: string | undefined;
    let length = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      if (name.charCodeAt(0) === 0x3a /* : */) {
        if (name === ':authority') authority = value;
        else if (name === ':method') method = value;
        else if (name === ':path') path = value;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(name)) refusal ??= 'h2-connection-specific-header';
      else if (name === 'te' && value.trim().toLowerCase() !== 'trailers') refusal ??= 'h2-te-not-trailers';
      else if (name === 'host') host = value;
      else if (name === 'content-length') length = true;
      else if (name === 'cookie') {
        // Clients split Cookie into one field per pair (RFC 9113 §8.2.3); HTTP/1.1 wants one line.
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        continue;
      }
      out.push(name, value);
    }
    if (cookie !== undefined) out.push('cookie', cookie);
    if (host === undefined) {
      if (authority !== undefined) out.push('host', authority);
    } else if (authority !== undefined && host.toLowerCase() !== authority.toLowerCase())
      refusal ??= 'h2-host-not-authority'; // RFC 9113 §8.3.1
    if (!length && !stream.endAfterHeaders) out.push('transfer-encoding', 'chunked');
    this.rawHeaders = out;
    this.refusal = refusal;
    this.method = method;
    // CONNECT names its target in :authority (authority-form), which request hygiene then refuses.
    this.url = path ?? authority ?? '';
  }

  /** The fields as Node's `IncomingMessage.headers` has them (repeats joined; cookies with "; "). */
  get headers(): IncomingHttpHeaders {
    if (this.#headers !== undefined) return this.#headers;
    const headers: Record<string, string> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const had = headers[name];
      headers[name] =
        had === undefined ? raw[i + 1]! : `${had}${name === 'cookie' ? '; ' : ', '}${raw[i + 1]}`;
    }
    this.#headers = headers;
    return headers;
  }

  get readableEnded(): boolean {
    return this.stream.readableEnded;
  }

  // The body, as the request-body reader takes it.
  on(event: 'data' | 'end', fn: ((chunk: Buffer) => void) | (() => void)): this {
    this.stream.on(event, fn);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  isPaused(): boolean {
    return this.stream.isPaused();
  }
}
