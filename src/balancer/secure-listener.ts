import { type IncomingMessage, Server, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import { badRequest } from '../errors.ts';
import { sendError } from './error-response.ts';
import { H2Request } from './h2-request.ts';
import { H2Response } from './h2-response.ts';
import type { ProxyContext } from './proxy-context.ts';
import { guardResets } from './reset-guard.ts';
import type { TlsStore } from './tls-store.ts';

/** What the plain listener was given: the HTTP/1.1 fallback of the secure one reads the same fields. */
const HTTP_SETTINGS = [
  'maxHeaderSize',
  'maxHeadersCount',
  'headersTimeout',
  'requestTimeout',
  'keepAliveTimeout',
  'connectionsCheckingInterval',
  'requireHostHeader',
  'insecureHTTPParser',
  'maxRequestsPerSocket',
] as const;

/** Events of the HTTP/1.1 side that the plain listener's handlers answer. */
const RELAYED = ['upgrade', 'clientError', 'connect'] as const;

/** Stream errors are seen through 'close' (the exchange counts the client as gone). */
function ignore(): void {}

/**
 * The HTTPS listener: TLS with the store's certificates (SNI, reloads), HTTP/2 and HTTP/1.1 offered through
 * ALPN. It has no handlers of its own: requests, upgrades and parse errors go to the handlers registered on
 * `hub`, the plain `http.Server` the balancer configured, whose limits (header size and count, timeouts)
 * the HTTP/1.1 side copies. HTTP/2 requests pass the HTTP/2 checks first, then take the same path, and are
 * proxied to the clones over HTTP/1.1; WebSocket upgrades stay on HTTP/1.1. With `hsts` every response
 * carries Strict-Transport-Security. Typed as an http.Server: it answers the same calls the balancer makes
 * (listen, address, close, closeIdleConnections, closeAllConnections).
 *
 * @example
 *   const https = createSecureListener(ctx, store, server);
 *   await store.attach(https as unknown as tls.Server);
 *   https.listen(8443, '127.0.0.1');
 */
export function createSecureListener(ctx: ProxyContext, store: TlsStore, hub: Server): Server {
  const { options, metrics, logger } = ctx;
  const tls = store.options;
  const h2 = options.http2;
  const profile = {
    minVersion: tls.minVersion,
    ciphers: tls.ciphers,
    ecdhCurve: tls.ecdhCurve,
    honorCipherOrder: tls.honorCipherOrder,
    SNICallback: store.sniCallback,
  };
  const sessions = new Set<ServerHttp2Session>();
  const server = h2.enabled
    ? createSecureServer({
        ...profile,
        allowHTTP1: true,
        settings: {
          maxConcurrentStreams: h2.maxConcurrentStreams,
          initialWindowSize: h2.initialWindowSize,
          maxHeaderListSize: options.server.maxHeaderSize,
          enablePush: false,
        },
        maxSessionMemory: h2.maxSessionMemory,
      })
    : createHttpsServer(profile);
  for (const key of HTTP_SETTINGS)
    (server as unknown as Record<string, unknown>)[key] = (hub as unknown as Record<string, unknown>)[key];
  // Idle HTTP/2 sessions close like idle HTTP/1.1 connections.
  if (h2.enabled) server.setTimeout(options.server.keepAliveTimeout);

  const hsts = options.hsts;
  // HTTP/1.1 requests (ALPN http/1.1, or no ALPN).
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
    hub.emit('request', req, res);
  });
  if (h2.enabled) {
    // Listening to 'request' made Node add its compatibility layer for HTTP/2 streams; streams are served
    // directly instead (H2Request, H2Response), which costs much less per request (docs/benchmarks.md).
    server.removeAllListeners('stream');
    server.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
        const req = new H2Request(stream, headers, raw);
        const res = new H2Response(stream);
        // Errors of the stream (a reset, a write after the client left) end it; its 'close' tells the exchange.
        stream.on('error', ignore);
        const refusal = req.refusal;
        if (refusal !== undefined) {
          metrics.rejected(refusal);
          sendError(res as unknown as ServerResponse, badRequest(refusal), false);
          return;
        }
        if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
        hub.emit('request', req, res);
      },
    );
  }
  for (const event of RELAYED) server.on(event, (...args: unknown[]) => hub.emit(event, ...args));
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    metrics.rejected('tls-handshake');
    logger.debug({ code: err.code, reason: err.message }, 'TLS handshake failed');
  });
  if (h2.enabled) {
    const limit = { maxResets: h2.maxResets, window: h2.resetWindow };
    server.on('session', (session: ServerHttp2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      guardResets(session, limit, () => {
        metrics.rejected('h2-rapid-reset');
        logger.warn({ peer: session.socket?.remoteAddress }, 'HTTP/2 client reset too many streams: GOAWAY');
      });
    });
    server.on('sessionError', (err: Error) => logger.debug({ err }, 'HTTP/2 session error'));
  }

  const closeIdle = Server.prototype.closeIdleConnections;
  const closeAll = Server.prototype.closeAllConnections;
  return Object.assign(server, {
    // The HTTP/1.1 side keeps Node's connection list; HTTP/2 sessions get GOAWAY and finish their streams.
    closeIdleConnections() {
      closeIdle.call(server as unknown as Server);
      for (const session of sessions) session.close();
    },
    closeAllConnections() {
      closeAll.call(server as unknown as Server);
      for (const session of sessions) session.destroy();
    },
  }) as unknown as Server & TlsServer;
}
