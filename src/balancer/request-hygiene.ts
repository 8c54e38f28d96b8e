import type { IncomingMessage } from 'node:http';

export interface HygieneFailure {
  /** A short stable reason, also the metrics label. */
  reason: string;
  status: 400 | 501;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values may hold HTAB, SP, visible ASCII and obs-text; no other control characters (RFC 9110 §5.5).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;

/**
 * Checks a parsed request against the RFC 9112 framing and header rules that request smuggling abuses, on
 * top of what Node's parser already refuses: every header line is looked at (rawHeaders), not the merged
 * view. Returns the first failure, or undefined for a clean request.
 *
 * @example
 *   const bad = checkRequest(req);
 *   if (bad) reject(res, bad.status, bad.reason);
 */
export function checkRequest(req: IncomingMessage): HygieneFailure | undefined {
  const raw = req.rawHeaders;
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
    if (lower === 'host') hosts++;
    else if (lower === 'content-length') {
      lengths++;
      if (!DIGITS.test(value.trim())) return { reason: 'invalid-content-length', status: 400 };
    } else if (lower === 'transfer-encoding') {
      encodings++;
      encoding = value;
    } else if (lower === 'content_length' || lower === 'transfer_encoding') {
      // Some servers read '_' as '-': a second framing header only they can see.
      return { reason: 'suspicious-framing-header', status: 400 };
    }
  }
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
  return undefined;
}
