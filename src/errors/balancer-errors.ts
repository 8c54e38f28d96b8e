import { ClonesError } from './clones-error.ts';

// Errors of clones/balancer: refused requests, failed clones, the admin API, the HAProxy engine.
// Each factory makes one coded ClonesError, e.g. `throw noTarget('every clone is draining');`

/** The balancer has no target that can take the request (none registered, all unhealthy or draining). */
export const noTarget = (why: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_NO_TARGET', `no clone can take this request: ${why}`, { status: 503 });

/**
 * The clone refused, reset or broke the connection, and the request could not be retried. The message names
 * no clone and carries no library text (clients are anonymous); the cause goes to the log.
 */
export const upstreamFailed = (cause: unknown): ClonesError =>
  new ClonesError('CLONES_BALANCER_UPSTREAM_ERROR', 'the clone failed and the request could not be retried', {
    status: 502,
    cause,
  });

/** The clone did not answer within `upstream.timeout`. */
export const upstreamTimeout = (ms: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_UPSTREAM_TIMEOUT', `the clone did not answer within ${ms} ms`, {
    status: 504,
  });

/** The request waited `upstream.queueTimeout` for a free connection to a clone; answered with Retry-After. */
export const queueTimeout = (ms: number): ClonesError =>
  new ClonesError(
    'CLONES_BALANCER_QUEUE_TIMEOUT',
    `no connection to a clone was free within ${ms} ms; retry shortly`,
    { status: 503 },
  );

/** The request body stalled or arrived slower than `requestBody.minRate` allows; the connection closes. */
export const bodyTimeout = (why: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_BODY_TIMEOUT', `the request body ${why}`, { status: 408 });

/** The request has more header lines than `server.maxHeaderCount`; the connection closes. */
export const tooManyHeaders = (limit: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_HEADERS_TOO_LARGE', `request has more than ${limit} header lines`, {
    status: 431,
  });

/** The request breaks RFC 9112 framing or header rules (a request-smuggling vector); the connection closes. */
export const badRequest = (reason: string, status = 400): ClonesError =>
  new ClonesError('CLONES_BALANCER_BAD_REQUEST', `rejected request: ${reason}`, { status });

/** The request's header block is larger than `server.maxHeaderSize`. */
export const headersTooLarge = (limit: number): ClonesError =>
  new ClonesError('CLONES_BALANCER_HEADERS_TOO_LARGE', `request headers exceed ${limit} bytes`, {
    status: 431,
  });

/** The client did not send its whole header block within `server.headersTimeout`. */
export const requestTimeout = (): ClonesError =>
  new ClonesError('CLONES_BALANCER_REQUEST_TIMEOUT', 'the request headers did not arrive in time', {
    status: 408,
  });

/** An admin API call without the right bearer token. */
export const adminUnauthorized = (): ClonesError =>
  new ClonesError('CLONES_BALANCER_UNAUTHORIZED', 'admin API: missing or wrong bearer token', {
    status: 401,
  });

/** An admin API call or method naming a target the balancer does not know. */
export const unknownTarget = (id: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_UNKNOWN_TARGET', `no target with id "${id}"`, { status: 404 });

/** `addTarget` with an id that is already registered. */
export const duplicateTarget = (id: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_DUPLICATE_TARGET', `a target with id "${id}" already exists`, {
    status: 409,
  });

/** An admin API body or a target/group argument is malformed; the message names the field. */
export const badTargetSpec = (field: string, message: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_BAD_SPEC', `${field}: ${message}`, { status: 400 });

/** No such admin API route. */
export const adminNotFound = (method: string, path: string): ClonesError =>
  new ClonesError('CLONES_BALANCER_NOT_FOUND', `no admin route ${method} ${path}`, { status: 404 });

/** `engine: 'haproxy'` was asked for but no haproxy binary is installed; the message is the install command. */
export const haproxyMissing = (): ClonesError =>
  new ClonesError(
    'CLONES_HAPROXY_MISSING',
    'the haproxy engine needs HAProxy 2.6+ (built with Lua, OpenSSL and the Prometheus exporter): run `sudo apt-get install -y haproxy`',
  );

/**
 * HAProxy refused what the engine asked of it: a generated config that `haproxy -c` rejects, a process that
 * exits, a runtime API command that fails or does not answer. `step` names what was being done.
 */
export const haproxyFailed = (step: string, detail: string): ClonesError =>
  new ClonesError('CLONES_HAPROXY_FAILED', `haproxy: ${step}: ${detail}`, { status: 503 });
