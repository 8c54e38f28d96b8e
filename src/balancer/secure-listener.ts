import { type IncomingMessage, Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket, Server as TlsServer } from 'node:tls';
import { badRequest, headersTooLarge } from '../errors.ts';
import { sendError } from './error-response.ts';
import { type H2Hooks, type H2Limits, H2Session } from './h2/h2-session.ts';
import type { H2Stream } from './h2/h2-stream.ts';
import { H2Request } from './h2-request.ts';
import { H2Response } from './h2-response.ts';
import type { ProxyContext } from './proxy-context.ts';
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

/**
 * The HTTPS listener: TLS with the store's certificates (SNI, reloads), HTTP/2 and HTTP/1.1 offered through
 * ALPN. HTTP/1.1 connections go to Node's HTTPS server; HTTP/2 ones to the balancer's own HTTP/2 server side
 * (`H2Session`, src/balancer/h2), which costs a fifth of Node's per request (docs/benchmarks.md). It has no
 * handlers of its own: requests, upgrades and parse errors go to the handlers registered on
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
  const sessions = new Set<H2Session>();
  const server = createHttpsServer({
    ...profile,
    ALPNProtocols: h2.enabled ? ['h2', 'http/1.1'] : ['http/1.1'],
  });
  for (const key of HTTP_SETTINGS)
    (server as unknown as Record<string, unknown>)[key] = (hub as unknown as Record<string, unknown>)[key];

  const hsts = options.hsts;
  // HTTP/1.1 requests (ALPN http/1.1, or no ALPN).
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
    hub.emit('request', req, res);
  });
  for (const event of RELAYED) server.on(event, (...args: unknown[]) => hub.emit(event, ...args));
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    metrics.rejected('tls-handshake');
    logger.debug({ code: err.code, reason: err.message }, 'TLS handshake failed');
  });

  if (h2.enabled) {
    const limits: H2Limits = {
      maxConcurrentStreams: h2.maxConcurrentStreams,
      initialWindowSize: h2.initialWindowSize,
      maxHeaderListSize: options.server.maxHeaderSize,
      maxResets: h2.maxResets,
      resetWindow: h2.resetWindow,
      maxUnread: h2.maxSessionMemory * 1024 * 1024,
      idleTimeout: options.server.keepAliveTimeout,
    };
    const hooks: H2Hooks = {
      onAbuse(session, kind, why) {
        metrics.rejected(`h2-${kind}`);
        logger.warn({ peer: session.remoteAddress, why }, `HTTP/2 ${kind}: GOAWAY(ENHANCE_YOUR_CALM)`);
      },
      onError(session, err) {
        logger.debug(
          { peer: session.remoteAddress, code: err.code, reason: err.message },
          'HTTP/2 session error',
        );
      },
      onClose(session) {
        sessions.delete(session);
      },
    };
    const onStream = (stream: H2Stream, fields: string[], oversize: boolean): void => {
      const req = new H2Request(stream, fields);
      const res = new H2Response(stream);
      if (oversize) {
        metrics.rejected('headers-too-large');
        sendError(res as unknown as ServerResponse, headersTooLarge(options.server.maxHeaderSize), false);
        return;
      }
      const refusal = req.refusal;
      if (refusal !== undefined) {
        metrics.rejected(refusal);
        sendError(res as unknown as ServerResponse, badRequest(refusal), false);
        return;
      }
      if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
      hub.emit('request', req, res);
    };
    // Node's HTTPS server keeps HTTP/1.1 connections; those that chose h2 through ALPN are ours.
    const http1 = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') sessions.add(new H2Session(socket, limits, hooks, onStream));
      else for (const fn of http1) fn.call(server, socket);
    });
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
