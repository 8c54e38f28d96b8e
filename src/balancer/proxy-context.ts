import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AccessLog } from './access-log.ts';
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
  /** The access log, when `accessLog` names a file. */
  readonly accessLog: AccessLog | undefined;
  /** Requests in flight through this balancer (the retry budget's base). */
  active: number;
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
