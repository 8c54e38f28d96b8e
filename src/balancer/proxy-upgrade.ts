import { type IncomingMessage, request } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { badRequest, noTarget, tooManyHeaders, upstreamFailed } from '../errors.ts';
import { writeRawError } from './error-response.ts';
import { requestHeaders, responseHeaders } from './forward-headers.ts';
import { forwardContext, isSecure, type ProxyContext } from './proxy-context.ts';
import { checkRequest, RequestFacts } from './request-hygiene.ts';
import { classifyFailure } from './retry-policy.ts';
import type { RouteState } from './router.ts';
import type { UpgradedPair } from './target.ts';
import { WsFrameBoundary } from './ws-frame-boundary.ts';

/**
 * The handler for the balancer's 'upgrade' event (WebSocket): routes like a request, relays the clone's
 * 101 answer, then pipes raw bytes both ways until either side closes. A connect failure is retried on
 * another clone; the pair is tracked on its target so draining can close it.
 *
 * @example
 *   server.on('upgrade', createUpgradeHandler(ctx));
 */
export function createUpgradeHandler(
  ctx: ProxyContext,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, duplex, head) => {
    const socket = duplex as Socket;
    socket.on('error', () => socket.destroy());
    const facts = new RequestFacts();
    const limit = ctx.options.server.maxHeaderCount;
    const bad = checkRequest(req, facts, limit);
    if (bad || facts.asterisk) {
      const reason = bad?.reason ?? 'asterisk-form-upgrade';
      ctx.metrics.rejected(reason);
      writeRawError(socket, bad?.status === 431 ? tooManyHeaders(limit) : badRequest(reason, bad?.status));
      return;
    }
    if (String(facts.upgrade).toLowerCase() !== 'websocket') {
      ctx.metrics.rejected('unsupported-upgrade');
      writeRawError(socket, badRequest('only WebSocket upgrades are proxied'));
      return;
    }
    const fwd = forwardContext(ctx, req, true);
    const headers = requestHeaders(req, facts, fwd);
    const state: RouteState = { group: undefined, groupCookie: undefined, tried: [] };
    const secure = isSecure(facts, fwd);

    const attempt = (): void => {
      const route = ctx.router.route(facts.cookie, state, secure);
      if (!route) {
        writeRawError(socket, noTarget('no routable target for the upgrade'));
        return;
      }
      const target = route.target;
      state.tried.push(target);
      const upReq = request({
        agent: false,
        host: target.host,
        port: target.port,
        method: req.method,
        path: facts.path,
        headers,
        timeout: ctx.options.upstream.timeout,
      });
      upReq.on('timeout', () => upReq.destroy(new Error('upstream timeout')));
      upReq.on('error', (err: NodeJS.ErrnoException) => {
        if (socket.destroyed) return;
        ctx.set.recordFailure(target, Date.now());
        // A new socket every time (agent: false): only a connect failure is certain not to have arrived.
        if (
          classifyFailure(err.code ?? '', false) === 'not-delivered' &&
          state.tried.length <= ctx.options.retries.attempts
        ) {
          ctx.metrics.retry('not-delivered');
          attempt();
          return;
        }
        ctx.logger.warn({ target: target.id, code: err.code }, 'upgrade failed upstream');
        writeRawError(socket, upstreamFailed(err));
      });
      upReq.on('response', (upRes) => {
        // The clone refused the upgrade: relay its answer as a plain response and close.
        const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
        const h = responseHeaders(upRes.rawHeaders, false);
        for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
        lines.push('connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        upRes.pipe(socket);
      });
      upReq.on('upgrade', (upRes, upSocket, upHead) => {
        target.recordSuccess();
        if (socket.destroyed) {
          upSocket.destroy();
          return;
        }
        const lines = [`HTTP/1.1 101 ${upRes.statusMessage || 'Switching Protocols'}`];
        const h = responseHeaders(upRes.rawHeaders, true);
        if (ctx.options.cloneHeaders) h.push('x-clones-clone', target.id, 'x-clones-release', target.release);
        if (route.cookies) for (const c of route.cookies) h.push('Set-Cookie', c);
        for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        socket.setTimeout(0);
        upSocket.setTimeout(0);
        socket.setNoDelay(true);
        upSocket.setNoDelay(true);
        const pair: UpgradedPair = { client: socket, upstream: upSocket, frames: new WsFrameBoundary() };
        pair.frames.feed(upHead);
        target.upgraded.add(pair);
        const close = () => {
          target.upgraded.delete(pair);
          upSocket.destroy();
          if (!pair.closing) socket.destroy();
        };
        upSocket.on('error', close);
        upSocket.on('close', close);
        socket.on('close', close);
        relayFrames(pair);
        socket.pipe(upSocket);
      });
      upReq.end();
    };
    attempt();
  };
}

/** A WebSocket close frame, server to client (unmasked), code 1012 "service restart": clients reconnect. */
const CLOSE_1012 = Buffer.from([0x88, 0x02, 0x03, 0xf4]);

/**
 * Clone to client, like `pipe` (with its backpressure) but following the frames, so that draining can end
 * the stream with a close frame between two frames rather than inside one.
 */
function relayFrames(pair: UpgradedPair): void {
  const { upstream, client, frames } = pair;
  upstream.on('data', (chunk: Buffer) => {
    frames.feed(chunk);
    if (!client.write(chunk)) {
      upstream.pause();
      client.once('drain', () => upstream.resume());
    }
    if (pair.closing && frames.atBoundary) endWithClose(pair);
  });
}

/**
 * Ends a proxied WebSocket for draining: the client gets a close frame with 1012 so it reconnects, and both
 * sockets are closed. A frame the clone is half-way through is relayed to its end first (the close frame
 * cannot go inside it); a frame that does not end within a second is cut by closing the socket instead.
 *
 * @example
 *   for (const pair of target.upgraded) closeUpgraded(pair);
 */
export function closeUpgraded(pair: UpgradedPair): void {
  if (pair.closing) return;
  pair.closing = true;
  setTimeout(() => {
    pair.upstream.destroy();
    pair.client.destroy();
  }, 1000).unref();
  if (pair.frames.atBoundary) endWithClose(pair);
}

function endWithClose(pair: UpgradedPair): void {
  pair.upstream.removeAllListeners('data');
  pair.upstream.destroy();
  if (pair.client.writable) pair.client.end(CLOSE_1012);
}
