/** Characters allowed in an HTTP/2 field name: tchar (RFC 9110 §5.6.2) without upper case (RFC 9113 §8.2.1). */
const NAME_CHAR = (() => {
  const ok = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") ok[c.charCodeAt(0)] = 1;
  return ok;
})();

const PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);

/** What the session needs from a request's fields. */
export interface RequestFieldFacts {
  /** Why the request is malformed (RFC 9113 §8.1.1): the stream is reset with PROTOCOL_ERROR. */
  malformed: string | undefined;
  /** The declared content-length, or -1. */
  contentLength: number;
}

/**
 * Checks a decoded request header list the way RFC 9113 §8.2 and §8.3 ask: lower-case token names,
 * values without NUL, CR, LF or surrounding whitespace, the four request pseudo-fields only, each once and
 * before the others, :method, :scheme and a non-empty :path present (CONNECT: :authority only), and one
 * content-length. What HTTP/1.1 hygiene also covers (connection-specific fields, TE, Host) is left to it.
 *
 * @example
 *   checkRequestFields([':method', 'GET', ':scheme', 'https', ':path', '/']); // { malformed: undefined, contentLength: -1 }
 */
export function checkRequestFields(fields: readonly string[]): RequestFieldFacts {
  let regular = false;
  let method: string | undefined;
  let scheme = false;
  let path: string | undefined;
  let authority = false;
  let contentLength = -1;
  const malformed = (why: string): RequestFieldFacts => ({ malformed: why, contentLength });
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (!validValue(value)) return malformed(`bad value of ${name}`);
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (regular) return malformed('pseudo-field after a regular field');
      if (!PSEUDO.has(name)) return malformed(`pseudo-field ${name}`);
      if (name === ':method') {
        if (method !== undefined) return malformed('two :method');
        method = value;
      } else if (name === ':path') {
        if (path !== undefined) return malformed('two :path');
        path = value;
      } else if (name === ':scheme') {
        if (scheme) return malformed('two :scheme');
        scheme = true;
      } else {
        if (authority) return malformed('two :authority');
        authority = true;
      }
      continue;
    }
    regular = true;
    if (!validName(name)) return malformed('bad field name');
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) return malformed('bad content-length');
      const n = Number(value);
      if (contentLength !== -1 && contentLength !== n) return malformed('two content-lengths');
      contentLength = n;
    }
  }
  if (method === undefined) return malformed('no :method');
  if (method === 'CONNECT') {
    if (!authority || scheme || path !== undefined) return malformed('CONNECT fields');
  } else if (!scheme || path === undefined || path === '') return malformed('no :scheme or :path');
  return { malformed: undefined, contentLength };
}

function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || NAME_CHAR[c] === 0) return false;
  }
  return true;
}

function validValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}
