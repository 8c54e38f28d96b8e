import { createServer, type Server } from 'node:http';
import { badRequest } from '../errors.ts';
import { sendError } from './error-response.ts';
import type { ProxyContext } from './proxy-context.ts';

// The host part of Host (RFC 9110 §7.2): a DNS name, an IPv4 address or a bracketed IPv6 literal, then an
// optional port, which is replaced by the HTTPS port.
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::\d{1,5})?$/;
const ORIGIN_FORM = /^\/[!"$-~]*$/;
const ACME = '/.well-known/acme-challenge/';

/**
 * The plain-HTTP listener of `redirect.port`: every request is sent to the same host and path over HTTPS
 * (`redirect.status`, 308 by default), except ACME HTTP-01 challenges when `redirect.acme` is on, which go to
 * the clones through `hub` like any request. A Host or request-target that cannot make a URL is a 400.
 *
 * @example
 *   const redirect = createRedirectServer(ctx, () => 443, server);
 *   redirect.listen(80, '0.0.0.0');
 */
export function createRedirectServer(ctx: ProxyContext, httpsPort: () => number, hub: Server): Server {
  const { options, metrics } = ctx;
  const { status, acme } = options.redirect;
  return createServer(
    {
      maxHeaderSize: options.server.maxHeaderSize,
      headersTimeout: options.server.headersTimeout,
      requestTimeout: options.server.requestTimeout,
      keepAliveTimeout: options.server.keepAliveTimeout,
      requireHostHeader: false,
      insecureHTTPParser: false,
    },
    (req, res) => {
      const url = req.url ?? '';
      if (acme && url.startsWith(ACME)) {
        hub.emit('request', req, res);
        return;
      }
      const host = HOST.exec(req.headers.host ?? '');
      if (host === null || !ORIGIN_FORM.test(url)) {
        const reason = host === null ? 'redirect-invalid-host' : 'redirect-bad-request-target';
        metrics.rejected(reason);
        sendError(res, badRequest(reason), true);
        return;
      }
      const port = httpsPort();
      res.writeHead(status, {
        location: `https://${host[1]}${port === 443 ? '' : `:${port}`}${url}`,
        'content-length': 0,
      });
      res.end();
    },
  );
}
