/**
 * Why an attempt on a clone failed, as the balancer's upstream client reports it. The code is what
 * `classifyFailure` reads to decide on a retry; it appears in the balancer's logs, never in a client's answer
 * (the client gets a coded 4xx/5xx from src/errors). The codes are listed in docs/balancer.md
 * ("How upstream failures are told apart").
 */
export type UpstreamErrorCode =
  /** No TCP connection within 10 s: the request never left. */
  | 'UPSTREAM_CONNECT_TIMEOUT'
  /** The connection closed before any byte of the answer (on a reused socket: the keep-alive race). */
  | 'UPSTREAM_CLOSED'
  /** The connection closed after part of the answer arrived. */
  | 'UPSTREAM_TRUNCATED'
  /** No response headers within `upstream.timeout` of the request's last byte. */
  | 'UPSTREAM_HEADERS_TIMEOUT'
  /** A gap of more than `upstream.timeout` between two pieces of the response body. */
  | 'UPSTREAM_BODY_TIMEOUT'
  /** The clone's answer breaks HTTP/1.1 framing (status line, header syntax, lengths, chunks). */
  | 'UPSTREAM_BAD_RESPONSE'
  /** The request cannot be written as HTTP/1.1 (a field with CR, LF or NUL): never sent. */
  | 'UPSTREAM_BAD_REQUEST'
  /** The request body did not match its Content-Length. */
  | 'UPSTREAM_REQUEST_LENGTH'
  /** The balancer gave the attempt up (client gone, body cut). */
  | 'UPSTREAM_ABORTED'
  /** The target was removed and its connections closed. */
  | 'UPSTREAM_DESTROYED';

export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;

  constructor(code: UpstreamErrorCode, message: string) {
    super(message);
    this.name = 'UpstreamError';
    this.code = code;
  }
}
