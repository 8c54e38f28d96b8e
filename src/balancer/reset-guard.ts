import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';

export interface ResetLimit {
  /** Streams that may end abnormally (reset by the client, or cut) within `window`. */
  maxResets: number;
  window: number;
}

/**
 * Bounds the HTTP/2 "rapid reset" pattern (CVE-2023-44487): a client opens streams and cancels them at once,
 * so the concurrent-stream limit never applies while the balancer keeps starting work for the clones. Streams
 * that close with an error code are counted per session in a fixed window; past `maxResets` the session gets
 * GOAWAY(ENHANCE_YOUR_CALM), takes no new stream, and is closed a second later, which abandons what is left.
 *
 * @example
 *   server.on('session', (session) => guardResets(session, { maxResets: 100, window: 10_000 }, () => metrics.rejected('h2-rapid-reset')));
 */
export function guardResets(session: ServerHttp2Session, limit: ResetLimit, onAbuse: () => void): void {
  let count = 0;
  let since = 0;
  const onClose = function (this: ServerHttp2Stream): void {
    if (this.rstCode === constants.NGHTTP2_NO_ERROR || session.destroyed) return;
    const now = Date.now();
    if (now - since > limit.window) {
      since = now;
      count = 0;
    }
    if (++count <= limit.maxResets) return;
    onAbuse();
    // GOAWAY first and flushed (destroy alone may cut the socket before the frame leaves); new streams are
    // refused from here on, and whatever is still open is cut a second later.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    session.close();
    setTimeout(() => session.destroy(), 1000).unref();
  };
  session.on('stream', (stream: ServerHttp2Stream) => {
    // 'close' comes once per stream; `on` spares the one-shot wrapper `once` would allocate per stream.
    stream.on('close', onClose);
  });
}
