import type { IncomingMessage } from 'node:http';
import { stripCookies } from './cookie-signer.ts';
import type { RequestFacts } from './request-hygiene.ts';

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

/** Never copied from the request: hop-by-hop, or re-written below. */
const DROPPED = new Set([...HOP_BY_HOP, 'expect', 'via', 'host', 'cookie']);

export interface ForwardContext {
  /** The peer is a configured trusted proxy: its X-Forwarded-* are kept and appended to. */
  trusted: boolean;
  clientIp: string;
  /** The scheme the client used to reach this balancer ('http' here; a trusted proxy may say 'https'). */
  proto: string;
  via: string;
  /** `1.1 <via>`, built once. */
  viaValue: string;
  ownCookies: readonly string[];
  upgrade: boolean;
}

/**
 * The headers to send to the clone, as a flat [name, value, ...] list: hop-by-hop fields and whatever
 * Connection names are dropped, X-Forwarded-For/-Proto/-Host are overwritten (or appended to, for a trusted
 * peer), Via is added and the balancer's own cookies are removed. Framing is left to the upstream client
 * (the one checked Content-Length, or chunked), never copied blindly.
 *
 * @example
 *   const facts = new RequestFacts();
 *   checkRequest(req, facts);
 *   const headers = requestHeaders(req, facts, { trusted: false, clientIp: '10.0.0.7', proto: 'http', via: 'clones', ownCookies: [], upgrade: false });
 */
export function requestHeaders(req: IncomingMessage, facts: RequestFacts, ctx: ForwardContext): string[] {
  const named = connectionTokens(facts.connection);
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (DROPPED.has(lower)) continue;
    if (lower.startsWith('x-forwarded-') || lower === 'forwarded') {
      if (!ctx.trusted) continue;
      if (lower === 'x-forwarded-for' || lower === 'x-forwarded-proto' || lower === 'x-forwarded-host')
        continue;
    }
    if (named?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  if (facts.host !== undefined) out.push('host', facts.host);
  if (facts.cookie !== undefined) {
    const cookie = ctx.ownCookies.length > 0 ? stripCookies(facts.cookie, ctx.ownCookies) : facts.cookie;
    if (cookie !== undefined) out.push('cookie', cookie);
  }
  const priorFor = ctx.trusted ? facts.forwardedFor : undefined;
  out.push('x-forwarded-for', priorFor ? `${priorFor}, ${ctx.clientIp}` : ctx.clientIp);
  out.push('x-forwarded-proto', (ctx.trusted && first(facts.forwardedProto)) || ctx.proto);
  const forwardedHost = (ctx.trusted && first(facts.forwardedHost)) || facts.host;
  if (forwardedHost !== undefined) out.push('x-forwarded-host', forwardedHost);
  if (ctx.via !== '') {
    const ours = req.httpVersion === '1.1' ? ctx.viaValue : `${req.httpVersion} ${ctx.via}`;
    out.push('via', facts.via ? `${facts.via}, ${ours}` : ours);
  }
  if (ctx.upgrade) {
    out.push('connection', 'upgrade');
    if (facts.upgrade !== undefined) out.push('upgrade', facts.upgrade);
  }
  return out;
}

/**
 * The clone's response headers as a flat [name, value, ...] list for `writeHead`, keeping case and
 * repeated fields (Set-Cookie), without hop-by-hop fields. `raw` is Node's rawHeaders or the upstream parser's.
 *
 * @example
 *   res.writeHead(upRes.statusCode, responseHeaders(upRes.rawHeaders, false));
 */
export function responseHeaders(raw: readonly string[], upgrade: boolean): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      if (!upgrade || (lower !== 'connection' && lower !== 'upgrade')) continue;
    }
    out.push(name, value);
  }
  const named = connectionTokens(connection);
  if (named === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!named.has(out[i]!.toLowerCase()) || (upgrade && out[i]!.toLowerCase() === 'upgrade'))
      kept.push(out[i]!, out[i + 1]!);
  }
  return kept;
}

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close' || lower === 'upgrade') return undefined;
  return new Set(lower.split(',').map((t) => t.trim()));
}

function first(value: string | undefined): string | undefined {
  return value?.split(',')[0]?.trim() || undefined;
}
