import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClonesError } from '../errors.ts';
import type { ForwardContext } from './forward-headers.ts';
import type { Metrics } from './metrics.ts';
import type { ResolvedOptions } from './options.ts';
import type { RequestFacts } from './request-hygiene.ts';
import type { RetryBudget } from './retry-budget.ts';
import type { Router } from './router.ts';
import type { TargetSet } from './target-set.ts';

/** What the request and upgrade handlers share with the balancer that owns them. */
export interface ProxyContext {
  readonly options: ResolvedOptions;
  readonly set: TargetSet;
  readonly router: Router;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly budget: RetryBudget;
  /** Requests in flight through this balancer (the retry budget's base). */
  active: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors that mean the request never reached the clone: safe to send elsewhere whatever the method. */
export const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Errors that, on a socket that already carried a response, mean the keep-alive race: never delivered. */
export const RESET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** RFC 9110 §9.2.2 idempotent methods, or a request that carries an Idempotency-Key. */
export function mayRepeat(method: string | undefined, facts: RequestFacts): boolean {
  return IDEMPOTENT.has(method ?? '') || facts.idempotencyKey;
}

const kForward = Symbol('clones.forward');

/**
 * Who sent the request and how, as the header builder needs it. Computed once per client connection (the
 * peer cannot change on a keep-alive connection) and kept on the socket.
 */
export function forwardContext(ctx: ProxyContext, req: IncomingMessage, upgrade: boolean): ForwardContext {
  const socket = req.socket as Socket & { encrypted?: boolean; [kForward]?: ForwardContext };
  if (!upgrade) {
    const known = socket[kForward];
    if (known !== undefined) return known;
  }
  let ip = socket.remoteAddress ?? '';
  if (ip.startsWith('::ffff:')) ip = ip.slice(7);
  const trusted = ip !== '' && ctx.options.trustedProxies.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  const proto = socket.encrypted ? 'https' : 'http';
  const via = ctx.options.via;
  const fwd: ForwardContext = {
    trusted,
    clientIp: ip,
    proto,
    via,
    viaValue: `1.1 ${via}`,
    ownCookies: ctx.router.ownCookies,
    upgrade,
  };
  if (!upgrade) socket[kForward] = fwd;
  return fwd;
}

/** Whether the client reached us over TLS, directly or through a trusted proxy (for the cookie's Secure flag). */
export function isSecure(facts: RequestFacts, fwd: ForwardContext): boolean {
  if (fwd.proto === 'https') return true;
  const xfp = facts.forwardedProto;
  return fwd.trusted && xfp !== undefined && xfp.split(',')[0]!.trim() === 'https';
}

/** Answers with the JSON error body; `close` also ends the connection (framing errors). */
export function sendError(res: ServerResponse, err: ClonesError, close: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (close) headers.connection = 'close';
  // Every 503 here is passing (no clone yet, a full queue): tell clients and crawlers when to come back.
  if (err.status === 503) headers['retry-after'] = '1';
  res.shouldKeepAlive = res.shouldKeepAlive && !close;
  res.writeHead(err.status, headers);
  res.end(body);
}

/** The same JSON error, written on a raw socket (parse errors and refused upgrades have no response object). */
export function writeRawError(socket: Socket, err: ClonesError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  socket.end(
    `HTTP/1.1 ${err.status} ${statusText(err.status)}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n` +
      `${err.status === 503 ? 'retry-after: 1\r\n' : ''}connection: close\r\n\r\n${body}`,
  );
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    408: 'Request Timeout',
    431: 'Request Header Fields Too Large',
    501: 'Not Implemented',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? 'Error';
}
