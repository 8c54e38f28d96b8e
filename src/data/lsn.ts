/**
 * A PostgreSQL WAL position ("16/B374D848") as a number of bytes, so positions compare and subtract. Plain
 * numbers are exact up to 2^53 bytes (8 PiB of WAL), far beyond a cluster's life, and survive JSON and Lua.
 *
 * @example
 *   parseLsn('0/40038A8') > parseLsn('0/4003880'); // true
 */
export function parseLsn(text: string): number {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) return Number.NaN;
  return Number.parseInt(match[1]!, 16) * 2 ** 32 + Number.parseInt(match[2]!, 16);
}

/**
 * The textual form PostgreSQL prints and accepts (`'0/40038A8'::pg_lsn`).
 *
 * @example
 *   formatLsn(parseLsn('0/40038A8')); // '0/40038A8'
 */
export function formatLsn(lsn: number): string {
  const high = Math.floor(lsn / 2 ** 32);
  const low = lsn - high * 2 ** 32;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

/**
 * Reads a position that came from outside (a session, a header): anything malformed counts as "no position".
 *
 * @example
 *   lsnOf(req.session.get('clonesDataLsn')); // 0 when absent
 */
export function lsnOf(value: unknown): number {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : 0;
  if (typeof value !== 'string') return 0;
  const n = parseLsn(value);
  return Number.isFinite(n) ? n : 0;
}
