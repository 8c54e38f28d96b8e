import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { stripCookies } from './cookie-signer.ts';

/** Hop-by-hop fields (RFC 9110 §7.6.1, plus RFC 2616's list): they describe one connection, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
]);

export interface ForwardContext {
  /** The peer is a configured trusted proxy: its X-Forwarded-* are kept and appended to. */
  trusted: boolean;
  clientIp: string;
  /** The scheme the client used to reach this balancer ('http' here; a trusted proxy may say 'https'). */
  proto: string;
  via: string;
  ownCookies: readonly string[];
  upgrade: boolean;
}

/**
 * The headers to send to the clone: hop-by-hop fields and whatever Connection names are dropped,
 * X-Forwarded-For/-Proto/-Host are overwritten (or appended to, for a trusted peer), Via is added and
 * the balancer's own cookies are removed. Framing is re-declared (chunked or the one checked
 * Content-Length), never copied blindly.
 *
 * @example
 *   const headers = requestHeaders(req, { trusted: false, clientIp: '10.0.0.7', proto: 'http', via: 'clones', ownCookies: [], upgrade: false });
 */
export function requestHeaders(req: IncomingMessage, ctx: ForwardContext): OutgoingHttpHeaders {
  const h = req.headers;
  const named = connectionTokens(h.connection);
  const out: OutgoingHttpHeaders = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (
      HOP_BY_HOP.has(lower) ||
      lower === 'expect' ||
      lower === 'via' ||
      lower === 'host' ||
      lower === 'cookie'
    )
      continue;
    if (lower.startsWith('x-forwarded-') || lower === 'forwarded') {
      if (!ctx.trusted) continue;
      if (lower === 'x-forwarded-for' || lower === 'x-forwarded-proto' || lower === 'x-forwarded-host')
        continue;
    }
    if (named?.has(lower)) continue;
    const prev = out[lower];
    const value = raw[i + 1]!;
    if (prev === undefined) out[lower] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[lower] = [String(prev), value];
  }
  if (h.host !== undefined) out.host = h.host;
  if (h.cookie !== undefined) {
    const cookie = ctx.ownCookies.length > 0 ? stripCookies(h.cookie, ctx.ownCookies) : h.cookie;
    if (cookie !== undefined) out.cookie = cookie;
  }
  const priorFor = ctx.trusted ? h['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = priorFor ? `${priorFor}, ${ctx.clientIp}` : ctx.clientIp;
  out['x-forwarded-proto'] = (ctx.trusted && first(h['x-forwarded-proto'])) || ctx.proto;
  const forwardedHost = (ctx.trusted && first(h['x-forwarded-host'])) || h.host;
  if (forwardedHost !== undefined) out['x-forwarded-host'] = forwardedHost;
  if (ctx.via !== '') {
    const ours = `${req.httpVersion} ${ctx.via}`;
    out.via = h.via ? `${h.via}, ${ours}` : ours;
  }
  if (ctx.upgrade) {
    out.connection = 'upgrade';
    if (h.upgrade !== undefined) out.upgrade = h.upgrade;
  } else if (h['transfer-encoding'] !== undefined) {
    out['transfer-encoding'] = 'chunked';
  }
  return out;
}

/**
 * The clone's response headers as a flat [name, value, ...] list for `writeHead`, keeping case and
 * repeated fields (Set-Cookie), without hop-by-hop fields.
 *
 * @example
 *   res.writeHead(upRes.statusCode, responseHeaders(upRes.rawHeaders, upRes.headers, false));
 */
export function responseHeaders(
  raw: readonly string[],
  headers: IncomingHttpHeaders,
  upgrade: boolean,
): string[] {
  const named = connectionTokens(headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (upgrade && (lower === 'connection' || lower === 'upgrade')) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  return new Set(value.split(',').map((t) => t.trim().toLowerCase()));
}

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v?.split(',')[0]?.trim() || undefined;
}
