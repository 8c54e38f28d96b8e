/**
 * The HTTP field syntax (RFC 9110 §5) the balancer checks on both sides: the client's request (request
 * hygiene), the clone's response (the upstream parser) and what the upstream client writes.
 *
 * @example
 *   if (!TOKEN.test(name) || FIELD_CTL.test(value)) refuse();
 */

/** A field name: one or more tchar. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A character that is not HTAB, SP, visible ASCII or obs-text: a control character (a lone CR or LF is one),
 * or, in a string, anything past one byte.
 */
export const FIELD_CTL = /[^\t\x20-\x7e\x80-\xff]/;

/** A Content-Length value: digits only, at most 15 of them (a safe integer). */
export const DIGITS = /^\d{1,15}$/;
