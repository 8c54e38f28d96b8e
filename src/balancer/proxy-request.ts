import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  badRequest,
  bodyTimeout,
  type ClonesError,
  noTarget,
  queueTimeout,
  tooManyHeaders,
  upstreamFailed,
  upstreamTimeout,
} from '../errors.ts';
import { sendError } from './error-response.ts';
import { type ForwardContext, requestHeaders, responseHeaders } from './forward-headers.ts';
import { H2Request } from './h2-request.ts';
import { forwardContext, isSecure, type ProxyContext } from './proxy-context.ts';
import { RequestBody } from './request-body.ts';
import { checkRequest, RequestFacts } from './request-hygiene.ts';
import { canRetry, classifyFailure, retryReason } from './retry-policy.ts';
import type { Route, RouteState } from './router.ts';
import type { Target } from './target.ts';
import type { UpstreamConnection, UpstreamHandler } from './upstream-connection.ts';

/** Methods RFC 9110 defines, answered by the balancer to `OPTIONS *` (the clones may allow fewer). */
const ALLOW = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH';

const kExchange = Symbol('clones.exchange');

/** The response's 'close' listener, shared by every exchange (no closure per request). */
function onClientClose(this: ServerResponse & { [kExchange]?: Exchange }): void {
  this[kExchange]?.clientClosed();
}

/**
 * After a framing error or a cut body, whatever follows on an HTTP/1.1 connection cannot be framed safely: it
 * closes once the answer is out. An HTTP/2 stream is framed on its own and ends with its answer; the session
 * and its other streams go on.
 */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (req instanceof H2Request) return;
  res.on('finish', () => req.socket.destroySoon());
}

function releaseLater(target: Target, conn: UpstreamConnection): void {
  target.pool.release(conn);
}

/**
 * The handler for the balancer's 'request' event: checks the request, routes it, streams it to the clone and
 * the answer back, and retries on another clone when that is safe.
 *
 * @example
 *   server.on('request', createRequestHandler(ctx));
 */
export function createRequestHandler(ctx: ProxyContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const facts = new RequestFacts();
    const limit = ctx.options.server.maxHeaderCount;
    const bad = checkRequest(req, facts, limit);
    if (bad) {
      ctx.metrics.rejected(bad.reason);
      ctx.logger.debug({ reason: bad.reason, peer: req.socket.remoteAddress }, 'request rejected');
      sendError(res, bad.status === 431 ? tooManyHeaders(limit) : badRequest(bad.reason, bad.status), true);
      closeAfterAnswer(req, res);
      return;
    }
    if (facts.asterisk) {
      // `OPTIONS *` asks about the server, not a resource (RFC 9110 §9.3.7): the balancer is the server here.
      res.writeHead(200, { allow: ALLOW, 'content-length': 0 });
      res.end();
      return;
    }
    new Exchange(ctx, req, res, facts).start();
  };
}

/** One client request and its attempts. It is its own upstream handler, so an attempt allocates no closures. */
class Exchange implements RouteState, UpstreamHandler {
  group: string | undefined = undefined;
  groupCookie: string | undefined = undefined;
  readonly tried: Target[] = [];
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #facts: RequestFacts;
  readonly #started = performance.now();
  #fwd: ForwardContext | undefined = undefined;
  #headers: string[] = [];
  #body: RequestBody | undefined = undefined;
  /** Withdraws the wait for a connection; set while the attempt is queued. */
  #unwait: (() => void) | undefined = undefined;
  #queueTimer: NodeJS.Timeout | undefined = undefined;
  #route: Route | undefined = undefined;
  /** The target and connection of the current attempt, while it holds them. */
  #target: Target | undefined = undefined;
  #conn: UpstreamConnection | undefined = undefined;
  /** The current attempt went out on a socket that had already carried a response. */
  #reused = false;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #onDrain: (() => void) | undefined = undefined;
  #status = 0;
  #attempts = 0;
  #retried = false;
  #responded = false;
  #done = false;
  /** Response body bytes sent on to the client (the access log's size field). */
  #bytes = 0;

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, facts: RequestFacts) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#facts = facts;
  }

  start(): void {
    const req = this.#req;
    const facts = this.#facts;
    this.#ctx.active++;
    this.#fwd = forwardContext(this.#ctx, req, false);
    this.#headers = requestHeaders(req, facts, this.#fwd);
    (this.#res as ServerResponse & { [kExchange]?: Exchange })[kExchange] = this;
    this.#res.on('close', onClientClose);
    if (facts.chunked || (facts.contentLength !== undefined && facts.contentLength !== '0')) {
      const o = this.#ctx.options;
      const pace = {
        timeout: o.server.bodyTimeout,
        minRate: o.server.bodyMinRate,
        idleTimeout: o.server.bodyIdleTimeout,
      };
      const body = new RequestBody(req, o.retries.bufferBytes, pace, (why) => this.#cutBody(why));
      this.#body = body;
      // A small body is read whole before a clone is chosen (nginx's proxy_request_buffering): a slow
      // client then holds no connection to a clone at all.
      if (!facts.chunked && Number(facts.contentLength) <= o.retries.bufferBytes) {
        body.buffer(() => {
          if (!this.#done) this.#attempt();
        });
        return;
      }
    }
    this.#attempt();
  }

  #attempt(): void {
    const ctx = this.#ctx;
    const route = ctx.router.route(this.#facts.cookie, this, isSecure(this.#facts, this.#fwd!));
    if (!route) {
      this.#fail(
        noTarget(
          this.group === undefined
            ? 'no healthy target in any group'
            : `group ${this.group} has no routable target`,
        ),
      );
      return;
    }
    const target = route.target;
    this.#route = route;
    this.tried.push(target);
    this.#attempts++;
    target.started();
    this.#target = target;
    const upload = this.#body !== undefined && !this.#body.complete;
    const conn = target.pool.acquire(upload);
    if (conn !== undefined) {
      this.#dispatch(conn);
      return;
    }
    this.#unwait = target.pool.wait((c) => this.#dispatch(c), upload);
    this.#queueTimer = setTimeout(() => this.#queueExpired(), ctx.options.upstream.queueTimeout);
  }

  /** No connection came free in time: the client is told to come back; the clone did nothing wrong. */
  #queueExpired(): void {
    this.#queueTimer = undefined;
    this.#unwait?.();
    this.#unwait = undefined;
    this.#releaseAttempt(false);
    this.#ctx.metrics.rejected('queue-timeout');
    this.#fail(queueTimeout(this.#ctx.options.upstream.queueTimeout));
  }

  /** The client's body is too slow: 408 and close; the clone's half-sent request is aborted. */
  #cutBody(why: string): void {
    if (this.#done) return;
    this.#ctx.metrics.rejected('body-timeout');
    this.#ctx.logger.debug({ why, peer: this.#req.socket.remoteAddress }, 'request body cut');
    sendError(this.#res, bodyTimeout(why), true);
    closeAfterAnswer(this.#req, this.#res);
    this.#finish(408);
    this.#unwait?.();
    this.#abort?.();
    if (this.#abort === undefined) this.#releaseAttempt(false);
  }

  #dispatch(conn: UpstreamConnection | undefined): void {
    this.#unwait = undefined;
    clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    if (conn === undefined) {
      // The target was removed while this waited for a connection: as good as refused, try elsewhere.
      this.onError(Object.assign(new Error('target removed'), { code: 'ECONNREFUSED' }));
      return;
    }
    if (this.#done) {
      // The client went away while this waited for a free connection.
      this.#conn = conn;
      this.#releaseAttempt(false);
      return;
    }
    this.#conn = conn;
    this.#reused = conn.served > 0;
    this.#abort = undefined;
    const requestBody = this.#body;
    const sink = conn.dispatch(
      {
        method: this.#req.method!,
        path: this.#facts.path,
        headers: this.#headers,
        body: requestBody !== undefined,
      },
      this,
    );
    if (sink === undefined || requestBody === undefined) return;
    requestBody.attach(sink);
    if (conn.upload) {
      const target = this.#target!;
      requestBody.onComplete(() => {
        if (this.#conn === conn) target.pool.uploaded(conn);
      });
    }
  }

  /**
   * Ends the current attempt's hold on its target and connection; `served`: the response completed. A failed
   * connection goes back on the next tick, out of the connection's own error handling.
   */
  #releaseAttempt(served: boolean): void {
    const target = this.#target;
    if (target === undefined) return;
    this.#target = undefined;
    target.finished();
    const conn = this.#conn;
    if (conn !== undefined) {
      this.#conn = undefined;
      if (served) target.pool.release(conn);
      else process.nextTick(releaseLater, target, conn);
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#done) abort();
  }

  onHeaders(status: number, raw: string[], resume: () => void, statusText: string): boolean {
    if (status < 200 || this.#done) return true;
    const ctx = this.#ctx;
    const target = this.#target!;
    target.responded(status);
    if (status === 502 || status === 503 || status === 504) ctx.set.recordFailure(target, Date.now());
    else if (target.consecutiveFailures !== 0) target.recordSuccess();
    this.#responded = true;
    this.#status = status;
    this.#resume = resume;
    const headers = responseHeaders(raw, false);
    if (ctx.options.cloneHeaders)
      headers.push('x-clones-clone', target.id, 'x-clones-release', target.release);
    const fwd = this.#fwd!;
    if (fwd.via !== '') headers.push('Via', fwd.viaValue);
    const cookies = this.#route!.cookies;
    if (cookies) for (const c of cookies) headers.push('Set-Cookie', c);
    this.#res.writeHead(status, statusText || undefined, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return true;
    this.#bytes += chunk.length;
    if (this.#res.write(chunk)) return true;
    this.#onDrain ??= () => this.#resume?.();
    this.#res.once('drain', this.#onDrain);
    return false;
  }

  onComplete(): void {
    this.#releaseAttempt(true);
    if (this.#done) return;
    this.#res.end();
    this.#finish(this.#status);
  }

  onError(err: Error): void {
    const target = this.#target;
    const reused = this.#reused;
    this.#releaseAttempt(false);
    if (this.#done || target === undefined) return;
    const ctx = this.#ctx;
    this.#body?.detach();
    if (this.#responded) {
      // The answer was already on its way: the client must see a broken response, not a short one.
      this.#res.destroy();
      this.#finish(502);
      return;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const failure = classifyFailure(code, reused);
    if (failure === 'refused') {
      // Hygiene should have refused this request; whatever slipped through is still the client's, never
      // counted against the clone (anonymous clients must not be able to eject clones).
      ctx.logger.warn({ code, method: this.#req.method }, 'request refused by the upstream client');
      ctx.metrics.rejected('unforwardable');
      sendError(this.#res, badRequest('request cannot be forwarded'), true);
      this.#finish(400);
      return;
    }
    ctx.set.recordFailure(target, Date.now());
    ctx.logger.debug({ target: target.id, code, attempt: this.#attempts }, 'upstream attempt failed');
    const again = canRetry(
      {
        failure,
        attempts: this.#attempts,
        clientWaiting: !this.#res.headersSent && !this.#res.destroyed,
        replayable: this.#body?.replayable ?? true,
        method: this.#req.method,
        facts: this.#facts,
        retried: this.#retried,
      },
      ctx.options.retries.attempts,
      ctx.budget,
      ctx.active,
    );
    if (again) {
      if (failure !== 'not-delivered') this.#retried = true;
      ctx.metrics.retry(retryReason(failure));
      // Not from inside the connection's error handling: the next attempt may pick the same clone's pool.
      process.nextTick(() => {
        if (!this.#done) this.#attempt();
      });
      return;
    }
    ctx.logger.warn({ target: target.id, code, err: err.message }, 'upstream failed, not retried');
    this.#fail(failure === 'timeout' ? upstreamTimeout(ctx.options.upstream.timeout) : upstreamFailed(err));
  }

  #fail(err: ClonesError): void {
    if (this.#done) return;
    this.#ctx.logger.warn({ code: err.code, method: this.#req.method, url: this.#req.url }, err.message);
    // Mid-body, the rest of the request cannot be read sensibly: close after answering.
    sendError(this.#res, err, this.#body !== undefined && !this.#body.complete);
    this.#finish(err.status);
  }

  /** The client connection closed: if the answer was not complete, the clone's work is abandoned. */
  clientClosed(): void {
    if (this.#done) return;
    if (!this.#res.writableFinished) {
      this.#finish(499);
      if (this.#unwait !== undefined) {
        this.#unwait();
        this.#unwait = undefined;
        this.#releaseAttempt(false);
      }
      this.#abort?.();
    }
  }

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    this.#body?.dispose();
    const ctx = this.#ctx;
    ctx.active--;
    if (this.#retried) ctx.budget.release();
    const seconds = (performance.now() - this.#started) / 1000;
    ctx.metrics.request(status, seconds, this.tried.at(-1));
    if (ctx.accessLog !== undefined) {
      // A clone's body counted as it went; a balancer's own answer by its Content-Length.
      const own = Number(this.#res.getHeader('content-length'));
      ctx.accessLog.request(
        this.#req,
        this.#fwd?.clientIp ?? '',
        status,
        this.#bytes > 0 ? this.#bytes : Number.isFinite(own) ? own : 0,
        this.tried.at(-1)?.id,
        seconds * 1000,
      );
    }
  }
}
