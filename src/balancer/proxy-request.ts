import { type ClientRequest, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { badRequest, type ClonesError, noTarget, upstreamFailed, upstreamTimeout } from '../errors.ts';
import { BodyReplay } from './body-replay.ts';
import { type ForwardContext, requestHeaders, responseHeaders } from './forward-headers.ts';
import {
  CONNECT_ERRORS,
  forwardContext,
  isSecure,
  mayRepeat,
  type ProxyContext,
  sendError,
} from './proxy-context.ts';
import { checkRequest } from './request-hygiene.ts';
import type { Route, RouteState } from './router.ts';
import type { Target } from './target.ts';

const TIMEOUT = 'CLONES_UPSTREAM_TIMEOUT';

/**
 * The handler for the balancer's 'request' event: checks the request, routes it, streams it to the clone and
 * the answer back, and retries on another clone when that is safe.
 *
 * @example
 *   server.on('request', createRequestHandler(ctx));
 */
export function createRequestHandler(ctx: ProxyContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const bad = checkRequest(req);
    if (bad) {
      ctx.metrics.rejected(bad.reason);
      ctx.logger.debug({ reason: bad.reason, peer: req.socket.remoteAddress }, 'request rejected');
      sendError(res, badRequest(bad.reason, bad.status), true);
      // Whatever follows on this connection cannot be framed safely.
      res.on('finish', () => req.socket.destroySoon());
      return;
    }
    new Exchange(ctx, req, res).start();
  };
}

/** One client request and its attempts. */
class Exchange {
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #started = performance.now();
  readonly #state: RouteState = { group: undefined, groupCookie: undefined, tried: [] };
  #fwd!: ForwardContext;
  #headers!: ReturnType<typeof requestHeaders>;
  #replay: BodyReplay | undefined;
  #upstream: ClientRequest | undefined;
  #releaseAttempt: (() => void) | undefined;
  #attempts = 0;
  #retried = false;
  #responded = false;
  #done = false;

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
  }

  start(): void {
    const req = this.#req;
    this.#ctx.active++;
    this.#fwd = forwardContext(this.#ctx, req, false);
    this.#headers = requestHeaders(req, this.#fwd);
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      this.#replay = new BodyReplay(req, this.#ctx.options.retries.bufferBytes);
    }
    this.#res.on('close', this.#onClientClose);
    this.#attempt();
  }

  #attempt(): void {
    const ctx = this.#ctx;
    const route = ctx.router.route(this.#req, this.#state, isSecure(this.#req, this.#fwd));
    if (!route) {
      this.#fail(
        noTarget(
          this.#state.group === undefined
            ? 'no healthy target in any group'
            : `group ${this.#state.group} has no routable target`,
        ),
      );
      return;
    }
    const target = route.target;
    this.#state.tried.push(target);
    this.#attempts++;
    target.outstanding++;
    target.requests++;
    let open = true;
    this.#releaseAttempt = () => {
      if (open) {
        open = false;
        target.outstanding--;
      }
    };
    const upstream = request({
      agent: target.agent,
      host: target.host,
      port: target.port,
      method: this.#req.method,
      path: this.#req.url,
      headers: this.#headers,
      timeout: ctx.options.upstream.timeout,
    });
    this.#upstream = upstream;
    upstream.on('response', (upRes) => this.#onResponse(upstream, upRes, target, route));
    upstream.on('error', (err) => this.#onError(upstream, err as NodeJS.ErrnoException, target));
    upstream.on('timeout', () =>
      upstream.destroy(Object.assign(new Error('upstream timeout'), { code: TIMEOUT })),
    );
    if (this.#replay) this.#replay.attach(upstream);
    else upstream.end();
  }

  #onResponse(upstream: ClientRequest, upRes: IncomingMessage, target: Target, route: Route): void {
    if (upstream !== this.#upstream || this.#done) {
      upRes.resume();
      return;
    }
    const ctx = this.#ctx;
    const res = this.#res;
    const status = upRes.statusCode ?? 502;
    if (status >= 500) target.errors++;
    if (status === 502 || status === 503 || status === 504) ctx.set.recordFailure(target, Date.now());
    else ctx.set.recordSuccess(target);
    this.#responded = true;
    const headers = responseHeaders(upRes.rawHeaders, upRes.headers, false);
    const o = ctx.options;
    if (o.cloneHeaders) headers.push('x-clones-clone', target.id, 'x-clones-release', target.release);
    if (o.via !== '') headers.push('Via', `${upRes.httpVersion} ${o.via}`);
    if (route.cookies) for (const c of route.cookies) headers.push('Set-Cookie', c);
    res.writeHead(status, upRes.statusMessage, headers);
    upRes.on('error', () => res.destroy());
    upRes.on('aborted', () => res.destroy());
    res.on('finish', () => this.#finish(status));
    upRes.pipe(res);
  }

  #onError(upstream: ClientRequest, err: NodeJS.ErrnoException, target: Target): void {
    if (upstream !== this.#upstream || this.#done) return;
    const ctx = this.#ctx;
    this.#replay?.detach();
    this.#releaseAttempt?.();
    if (this.#responded) {
      // The answer was already on its way: the client must see a broken response, not a short one.
      this.#res.destroy();
      this.#finish(502);
      return;
    }
    const code = err.code ?? '';
    const timedOut = code === TIMEOUT;
    const neverArrived =
      CONNECT_ERRORS.has(code) || (upstream.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE'));
    ctx.set.recordFailure(target, Date.now());
    ctx.logger.debug({ target: target.id, code, attempt: this.#attempts }, 'upstream attempt failed');
    const canRetry =
      this.#attempts <= ctx.options.retries.attempts &&
      !this.#res.headersSent &&
      !this.#res.destroyed &&
      (this.#replay?.replayable ?? true) &&
      (neverArrived || mayRepeat(this.#req)) &&
      // A request that never reached a clone adds no load anywhere by going elsewhere: only repeats of
      // delivered requests spend the budget.
      (neverArrived || this.#retried || ctx.budget.tryAcquire(ctx.active));
    if (canRetry) {
      if (!neverArrived) this.#retried = true;
      ctx.metrics.retry(neverArrived ? 'not-delivered' : timedOut ? 'timeout' : 'idempotent');
      this.#attempt();
      return;
    }
    this.#fail(
      timedOut ? upstreamTimeout(target.id, ctx.options.upstream.timeout) : upstreamFailed(target.id, err),
    );
  }

  #fail(err: ClonesError): void {
    if (this.#done) return;
    this.#ctx.logger.warn({ code: err.code, method: this.#req.method, url: this.#req.url }, err.message);
    sendError(this.#res, err, false);
    this.#finish(err.status);
  }

  readonly #onClientClose = (): void => {
    if (this.#done) return;
    if (!this.#res.writableFinished) {
      this.#upstream?.destroy();
      this.#finish(499);
    }
  };

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#releaseAttempt?.();
    const ctx = this.#ctx;
    ctx.active--;
    if (this.#retried) ctx.budget.release();
    ctx.metrics.request(status, (performance.now() - this.#started) / 1000);
  }
}
