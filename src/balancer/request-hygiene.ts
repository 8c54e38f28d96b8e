import type { IncomingMessage } from 'node:http';
import { DIGITS, TOKEN } from './field-syntax.ts';

export interface HygieneFailure {
  /** A short stable reason, also the metrics label. */
  reason: string;
  status: 400 | 431 | 501;
}

// Field values may hold HTAB, SP, visible ASCII and obs-text; no other control characters (RFC 9110 §5.5).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// RFC 3986 authority as Host carries it (RFC 9110 §7.2): an IP literal, or a reg-name / IPv4 address, then an
// optional port. No userinfo, path, query or fragment: 'evil.example/../x@y' is not a host.
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::\d{0,5})?$/;
// origin-form (RFC 9112 §3.2.1): absolute-path [ "?" query ]: visible ASCII, no '#' (a fragment is never sent).
const ORIGIN_FORM = /^\/[!"$-~]*$/;

/**
 * The header fields the proxy needs, gathered by `checkRequest` in the pass it makes anyway, so the proxy
 * never has Node build the `req.headers` object. Repeated fields are joined as Node joins them.
 */
export class RequestFacts {
  host: string | undefined = undefined;
  cookie: string | undefined = undefined;
  connection: string | undefined = undefined;
  contentLength: string | undefined = undefined;
  chunked = false;
  forwardedFor: string | undefined = undefined;
  forwardedProto: string | undefined = undefined;
  forwardedHost: string | undefined = undefined;
  via: string | undefined = undefined;
  upgrade: string | undefined = undefined;
  idempotencyKey = false;
  /** The request-target to send to the clone, always in origin-form ('/path?query'). */
  path = '/';
  /** `OPTIONS *`: a question for the balancer itself, never forwarded. */
  asterisk = false;
}

/**
 * Checks a parsed request against the RFC 9112 framing and header rules that request smuggling abuses, on
 * top of what Node's parser already refuses: every header line is looked at (rawHeaders), not the merged
 * view. Returns the first failure, or undefined for a clean request; fills `facts` on the way.
 *
 * @example
 *   const facts = new RequestFacts();
 *   const bad = checkRequest(req, facts);
 *   if (bad) reject(res, bad.status, bad.reason);
 */
export function checkRequest(
  req: IncomingMessage,
  facts: RequestFacts = new RequestFacts(),
  maxHeaderCount = Number.POSITIVE_INFINITY,
): HygieneFailure | undefined {
  const raw = req.rawHeaders;
  // Node keeps only `maxHeadersCount` lines; the server is set one past our limit, so a longer block shows
  // here as one line too many instead of passing with its tail (a second Host, a Content-Length) unseen.
  if (raw.length / 2 > maxHeaderCount) return { reason: 'too-many-header-lines', status: 431 };
  let hosts = 0;
  let lengths = 0;
  let encodings = 0;
  let encoding = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (!TOKEN.test(name)) return { reason: 'bad-header-name', status: 400 };
    if (BAD_VALUE.test(value)) return { reason: 'bad-header-value', status: 400 };
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        hosts++;
        facts.host = value;
        break;
      case 'content-length':
        lengths++;
        if (!DIGITS.test(value.trim())) return { reason: 'invalid-content-length', status: 400 };
        facts.contentLength = value;
        break;
      case 'transfer-encoding':
        encodings++;
        encoding = value;
        break;
      case 'content_length':
      case 'transfer_encoding':
        // Some servers read '_' as '-': a second framing header only they can see.
        return { reason: 'suspicious-framing-header', status: 400 };
      case 'cookie':
        facts.cookie = facts.cookie === undefined ? value : `${facts.cookie}; ${value}`;
        break;
      case 'connection':
        facts.connection = join(facts.connection, value);
        break;
      case 'x-forwarded-for':
        facts.forwardedFor = join(facts.forwardedFor, value);
        break;
      case 'x-forwarded-proto':
        facts.forwardedProto = join(facts.forwardedProto, value);
        break;
      case 'x-forwarded-host':
        facts.forwardedHost = join(facts.forwardedHost, value);
        break;
      case 'via':
        facts.via = join(facts.via, value);
        break;
      case 'upgrade':
        facts.upgrade = join(facts.upgrade, value);
        break;
      case 'idempotency-key':
        facts.idempotencyKey = true;
        break;
    }
  }
  facts.chunked = encodings > 0;
  if (hosts > 1) return { reason: 'duplicate-host', status: 400 };
  if (hosts === 0 && req.httpVersionMinor >= 1) return { reason: 'missing-host', status: 400 };
  if (lengths > 1) return { reason: 'duplicate-content-length', status: 400 };
  if (encodings > 0) {
    if (lengths > 0) return { reason: 'content-length-with-transfer-encoding', status: 400 };
    if (req.httpVersionMinor === 0) return { reason: 'transfer-encoding-in-http-1.0', status: 400 };
    if (encodings > 1) return { reason: 'duplicate-transfer-encoding', status: 400 };
    const codings = encoding.split(',').map((c) => c.trim().toLowerCase());
    if (codings[codings.length - 1] !== 'chunked')
      return { reason: 'transfer-encoding-not-chunked', status: 400 };
    if (codings.length > 1) {
      if (codings.slice(0, -1).includes('chunked')) return { reason: 'chunked-twice', status: 400 };
      // The balancer re-frames bodies as plain chunked and cannot keep other codings.
      return { reason: 'unsupported-transfer-coding', status: 501 };
    }
  }
  if (facts.host !== undefined && !HOST.test(facts.host)) return { reason: 'invalid-host', status: 400 };
  return checkTarget(req.method ?? '', req.url ?? '', facts);
}

/**
 * Checks the request-target (RFC 9112 §3.2) and sets `facts.path` to its origin-form. Absolute-form is
 * normalised (§3.2.2): its authority replaces Host. Asterisk-form is only for OPTIONS, which the balancer
 * answers itself. Anything else (authority-form, other schemes, a relative path) is the client's error: it
 * must never reach the upstream client, whose refusal would look like the clone's failure.
 */
function checkTarget(method: string, target: string, facts: RequestFacts): HygieneFailure | undefined {
  if (target.charCodeAt(0) === 0x2f /* / */) {
    if (!ORIGIN_FORM.test(target)) return { reason: 'bad-request-target', status: 400 };
    facts.path = target;
    return undefined;
  }
  if (target === '*') {
    if (method !== 'OPTIONS') return { reason: 'asterisk-form-not-options', status: 400 };
    facts.asterisk = true;
    return undefined;
  }
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (absolute === null) return { reason: 'bad-request-target', status: 400 };
  const authority = absolute[1]!;
  const rest = absolute[2]!;
  if (authority === '' || !HOST.test(authority)) return { reason: 'bad-request-target', status: 400 };
  const path = rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
  if (!ORIGIN_FORM.test(path)) return { reason: 'bad-request-target', status: 400 };
  facts.path = path;
  facts.host = authority;
  return undefined;
}

function join(prev: string | undefined, value: string): string {
  return prev === undefined ? value : `${prev}, ${value}`;
}
