import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** What the engine needs to know about a request, whatever the framework. */
export interface RequestInfo {
  cookie: string | string[] | undefined;
  /** True when the request arrived over TLS on this very socket. */
  encrypted: boolean;
  remoteAddress: string | undefined;
  forwardedProto: string | string[] | undefined;
  /** The framework's own request object, handed to `genid(req)`. */
  request?: unknown;
}

/** Reads a RequestInfo off a node:http request (Express, Fastify's raw request, plain node:http). */
export function requestInfo(req: IncomingMessage): RequestInfo {
  return {
    cookie: req.headers.cookie,
    encrypted: (req.socket as TLSSocket).encrypted === true,
    remoteAddress: req.socket.remoteAddress,
    forwardedProto: req.headers['x-forwarded-proto'],
    request: req,
  };
}
