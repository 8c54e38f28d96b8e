import { STATIC_NAME_INDEX } from './static-table.ts';

/** :status values with a static entry of their own (RFC 7541 Appendix A, indices 8 to 14). */
const STATUS_INDEX: Record<number, number> = { 200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14 };

/**
 * Encodes a response header block (RFC 7541) for the session's HEADERS frame: `:status` first, then the
 * fields (lower-case names, name/value pairs). It keeps no dynamic table, so the client's table never needs
 * one of ours and any SETTINGS_HEADER_TABLE_SIZE is fine; names in the static table are sent by index, the
 * rest as literals without indexing and without Huffman coding. Values are written as latin1, as Node sends
 * header fields.
 *
 * @example
 *   const block = encodeResponse(200, ['content-type', 'text/plain', 'content-length', '2']);
 */
export function encodeResponse(
  status: number,
  fields: readonly string[],
  offset = 0,
  tableSize = -1,
): Buffer {
  let size = offset + 16;
  for (let i = 0; i < fields.length; i++) size += fields[i]!.length + 6;
  const out = Buffer.allocUnsafe(size);
  let pos = offset;
  // The client lowered SETTINGS_HEADER_TABLE_SIZE: the next block opens with a size update (RFC 7541 §4.2).
  if (tableSize >= 0) pos = writeInt(out, pos, tableSize, 5, 0x20);
  const indexed = STATUS_INDEX[status];
  if (indexed !== undefined) out[pos++] = 0x80 | indexed;
  else {
    // Literal without indexing, name :status (index 8), value of three digits.
    out[pos++] = 0x08;
    out[pos++] = 3;
    pos += out.write(String(status), pos, 'latin1');
  }
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const index = STATIC_NAME_INDEX.get(name);
    if (index === undefined) {
      out[pos++] = 0;
      pos = writeInt(out, pos, name.length, 7, 0);
      pos += out.write(name, pos, 'latin1');
    } else pos = writeInt(out, pos, index, 4, 0);
    pos = writeInt(out, pos, value.length, 7, 0);
    pos += out.write(value, pos, 'latin1');
  }
  return out.subarray(0, pos);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits above the prefix. */
function writeInt(out: Buffer, pos: number, value: number, prefix: number, high: number): number {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out[pos++] = high | value;
    return pos;
  }
  out[pos++] = high | mask;
  let rest = value - mask;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[pos++] = rest;
  return pos;
}
