import { invalidOption } from '../errors.ts';

/** Browsers keep at most 4,096 bytes per cookie; a longer value cannot be one we set. */
const MAX_VALUE_LENGTH = 4096;

// RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E (no CTLs, space, DQUOTE, ',', ';', '\').
const COOKIE_OCTET = new Uint8Array(128);
for (let c = 0x21; c <= 0x7e; c++) {
  if (c !== 0x22 && c !== 0x2c && c !== 0x3b && c !== 0x5c) COOKIE_OCTET[c] = 1;
}

// RFC 6265 cookie-name = RFC 7230 token: tchar = "!#$%&'*+-.^_`|~" / DIGIT / ALPHA.
const TOKEN_CHAR = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) TOKEN_CHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN_CHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN_CHAR[c] = 1;
for (const c of "!#$%&'*+-.^_`|~") TOKEN_CHAR[c.charCodeAt(0)] = 1;

const SPACE = 0x20;
const TAB = 0x09;
const DQUOTE = 0x22;

/**
 * Parses a Cookie header into name -> every value seen, in order, so the caller can refuse duplicates (a
 * cookie tossed in by a sibling subdomain). Never throws; skips malformed pairs and any name or value with
 * characters RFC 6265 does not allow; strips one pair of surrounding double quotes; does not percent-decode;
 * drops values longer than 4,096 characters. Runs in time linear in the header length.
 *
 * @example
 *   parseCookies('sid=abc; theme=dark; sid=evil'); // Map { 'sid' => ['abc', 'evil'], 'theme' => ['dark'] }
 */
export function parseCookies(header: string | string[] | undefined): Map<string, string[]> {
  const cookies = new Map<string, string[]>();
  if (typeof header === 'string') parseInto(header, cookies);
  else if (Array.isArray(header)) {
    for (const line of header) if (typeof line === 'string') parseInto(line, cookies);
  }
  return cookies;
}

function parseInto(header: string, cookies: Map<string, string[]>): void {
  const length = header.length;
  let start = 0;
  // Found once and reused while it lies ahead, so a header full of pairs without '=' stays linear.
  let eq = -1;
  while (start < length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = length;
    if (eq < start) {
      eq = header.indexOf('=', start);
      if (eq === -1) return;
    }
    if (eq < end) addPair(header, start, eq, end, cookies);
    start = end + 1;
  }
}

function addPair(
  header: string,
  start: number,
  eq: number,
  end: number,
  cookies: Map<string, string[]>,
): void {
  let nameStart = start;
  let nameEnd = eq;
  while (nameStart < nameEnd && isBlank(header.charCodeAt(nameStart))) nameStart++;
  while (nameEnd > nameStart && isBlank(header.charCodeAt(nameEnd - 1))) nameEnd--;
  if (nameStart === nameEnd) return;
  let valueStart = eq + 1;
  let valueEnd = end;
  while (valueStart < valueEnd && isBlank(header.charCodeAt(valueStart))) valueStart++;
  while (valueEnd > valueStart && isBlank(header.charCodeAt(valueEnd - 1))) valueEnd--;
  if (
    valueEnd - valueStart >= 2 &&
    header.charCodeAt(valueStart) === DQUOTE &&
    header.charCodeAt(valueEnd - 1) === DQUOTE
  ) {
    valueStart++;
    valueEnd--;
  }
  if (valueEnd - valueStart > MAX_VALUE_LENGTH) return;
  for (let i = nameStart; i < nameEnd; i++) if (TOKEN_CHAR[header.charCodeAt(i)] !== 1) return;
  for (let i = valueStart; i < valueEnd; i++) if (COOKIE_OCTET[header.charCodeAt(i)] !== 1) return;
  const name = header.slice(nameStart, nameEnd);
  const value = header.slice(valueStart, valueEnd);
  const seen = cookies.get(name);
  if (seen === undefined) cookies.set(name, [value]);
  else seen.push(value);
}

function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

export interface CookieAttributes {
  /** Seconds (fractions are dropped); 0 clears the cookie. Also emits Expires for old clients. */
  maxAge?: number;
  /** Must start with '/'. */
  path?: string;
  domain?: string;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: 'Lax' | 'Strict' | 'None';
  /** CHIPS: a cookie keyed by the top-level site too; browsers require Secure. */
  partitioned?: boolean;
  priority?: 'Low' | 'Medium' | 'High';
}

const SAME_SITE: Record<string, string> = { lax: 'Lax', strict: 'Strict', none: 'None' };
const PRIORITY: Record<string, string> = { low: 'Low', medium: 'Medium', high: 'High' };
// RFC 6265 path-value: any CHAR except CTLs or ';'.
const PATH = /^\/[\x20-\x3a\x3c-\x7e]*$/;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN = new RegExp(`^\\.?(?:${LABEL}\\.)*${LABEL}$`, 'i');
const EPOCH = new Date(0).toUTCString();

/**
 * Serializes one Set-Cookie header value. Every name, value and attribute is checked, and anything a
 * browser would refuse or misread (bad characters, SameSite=None or Partitioned without Secure, a
 * `__Host-` cookie with a Domain...) throws CLONES_INVALID_OPTION, so a bad option fails at start rather
 * than becoming a cookie the browser silently drops.
 *
 * @example
 *   serializeCookie('sid', token, { path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge: 3600 });
 *   // 'sid=<token>; Max-Age=3600; Expires=Thu, 01 Jan 2026 01:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax'
 */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  if (typeof name !== 'string' || name.length === 0 || !allIn(name, TOKEN_CHAR)) {
    throw invalidOption('cookie.name', `${describe(name)} is not a valid cookie name (RFC 6265 token)`);
  }
  if (typeof value !== 'string' || !isCookieValue(value)) {
    throw invalidOption(
      'cookie.value',
      `the value of cookie "${name}" has characters a cookie cannot carry (RFC 6265 cookie-octet)`,
    );
  }
  const a = attributes ?? {};
  let out = `${name}=${value}`;

  if (a.maxAge !== undefined) {
    if (typeof a.maxAge !== 'number' || !Number.isFinite(a.maxAge) || a.maxAge < 0) {
      throw invalidOption('cookie.maxAge', `must be a number of seconds >= 0, got ${describe(a.maxAge)}`);
    }
    const seconds = Math.floor(a.maxAge);
    const expires = seconds === 0 ? EPOCH : new Date(Date.now() + seconds * 1000).toUTCString();
    if (expires === 'Invalid Date')
      throw invalidOption('cookie.maxAge', `${seconds} seconds is too far ahead`);
    out += `; Max-Age=${seconds}; Expires=${expires}`;
  }
  if (a.domain !== undefined) {
    if (typeof a.domain !== 'string' || a.domain.length > 253 || !DOMAIN.test(a.domain)) {
      throw invalidOption('cookie.domain', `${describe(a.domain)} is not a valid domain`);
    }
    out += `; Domain=${a.domain}`;
  }
  if (a.path !== undefined) {
    if (typeof a.path !== 'string' || !PATH.test(a.path)) {
      throw invalidOption(
        'cookie.path',
        `${describe(a.path)} must start with "/" and hold no control characters or ";"`,
      );
    }
    out += `; Path=${a.path}`;
  }
  const secure = flag(a.secure, 'cookie.secure');
  if (secure) out += '; Secure';
  if (flag(a.httpOnly, 'cookie.httpOnly')) out += '; HttpOnly';
  if (a.sameSite !== undefined) {
    const sameSite = typeof a.sameSite === 'string' ? SAME_SITE[a.sameSite.toLowerCase()] : undefined;
    if (sameSite === undefined) {
      throw invalidOption(
        'cookie.sameSite',
        `must be 'Lax', 'Strict' or 'None', got ${describe(a.sameSite)}`,
      );
    }
    if (sameSite === 'None' && !secure) {
      throw invalidOption(
        'cookie.sameSite',
        "'None' requires secure: true (browsers drop the cookie otherwise)",
      );
    }
    out += `; SameSite=${sameSite}`;
  }
  if (flag(a.partitioned, 'cookie.partitioned')) {
    if (!secure) {
      throw invalidOption('cookie.partitioned', 'requires secure: true (browsers drop the cookie otherwise)');
    }
    out += '; Partitioned';
  }
  if (a.priority !== undefined) {
    const priority = typeof a.priority === 'string' ? PRIORITY[a.priority.toLowerCase()] : undefined;
    if (priority === undefined) {
      throw invalidOption(
        'cookie.priority',
        `must be 'Low', 'Medium' or 'High', got ${describe(a.priority)}`,
      );
    }
    out += `; Priority=${priority}`;
  }
  checkPrefix(name, secure, a);
  return out;
}

// Browsers match the prefixes case-insensitively and silently drop a cookie that breaks their rules.
function checkPrefix(name: string, secure: boolean, a: CookieAttributes): void {
  const lower = name.toLowerCase();
  if (lower.startsWith('__secure-') && !secure) {
    throw invalidOption('cookie.secure', `a cookie named "${name}" (__Secure- prefix) requires secure: true`);
  }
  if (lower.startsWith('__host-') && (!secure || a.domain !== undefined || a.path !== '/')) {
    throw invalidOption(
      'cookie.name',
      `a cookie named "${name}" (__Host- prefix) requires secure: true, path: '/' and no domain`,
    );
  }
}

function flag(value: unknown, option: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean')
    throw invalidOption(option, `must be true or false, got ${describe(value)}`);
  return value;
}

function isCookieValue(value: string): boolean {
  if (value.length >= 2 && value.charCodeAt(0) === DQUOTE && value.charCodeAt(value.length - 1) === DQUOTE) {
    return allIn(value.slice(1, -1), COOKIE_OCTET);
  }
  return allIn(value, COOKIE_OCTET);
}

function allIn(text: string, table: Uint8Array): boolean {
  for (let i = 0; i < text.length; i++) if (table[text.charCodeAt(i)] !== 1) return false;
  return true;
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}
