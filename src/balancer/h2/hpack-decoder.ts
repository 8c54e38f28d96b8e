import { h2Error } from './h2-error.ts';
import { huffmanDecode } from './huffman.ts';
import { STATIC_TABLE } from './static-table.ts';

/** Per-entry overhead of the dynamic table (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/**
 * The request side of HPACK (RFC 7541): decodes header blocks into name/value pairs and keeps the dynamic
 * table the client's encoder builds. One per session; every block must be decoded in order, even one whose
 * request is refused, or the table goes out of step. Any coding error is a COMPRESSION_ERROR (a connection
 * error). Strings are read as latin1, as Node reads header fields.
 *
 * @example
 *   const hpack = new HpackDecoder(4096);
 *   const fields: string[] = [];
 *   const size = hpack.decode(block, fields, 16_384); // fields: [':method', 'GET', ...]
 */
export class HpackDecoder {
  /** The largest table the client may ask for (our SETTINGS_HEADER_TABLE_SIZE). */
  readonly #limit: number;
  #max: number;
  #size = 0;
  /** Oldest first: dynamic index 1 is the last element. */
  readonly #names: string[] = [];
  readonly #values: string[] = [];
  #pos = 0;

  constructor(limit: number) {
    this.#limit = limit;
    this.#max = limit;
  }

  /**
   * Decodes one whole header block into `out` (name, value, name, value ...). Fields past `maxListSize`
   * (sizes counted as RFC 9113 §6.5.2 does) are decoded but not kept; the returned list size then exceeds it.
   */
  decode(block: Buffer, out: string[], maxListSize: number): number {
    this.#pos = 0;
    let listSize = 0;
    let fields = false;
    const end = block.length;
    while (this.#pos < end) {
      const first = block[this.#pos]!;
      let name: string;
      let value: string;
      if (first & 0x80) {
        // Indexed field.
        const index = this.#int(block, 7);
        if (index === 0) throw h2Error('COMPRESSION_ERROR', 'index 0');
        name = this.#name(index);
        value = this.#value(index);
      } else if (first & 0x40) {
        // Literal with incremental indexing.
        const index = this.#int(block, 6);
        name = index === 0 ? this.#string(block) : this.#name(index);
        value = this.#string(block);
        this.#add(name, value);
      } else if (first & 0x20) {
        // Dynamic table size update: only before the first field of a block (RFC 7541 §4.2).
        if (fields) throw h2Error('COMPRESSION_ERROR', 'table size update after a field');
        const size = this.#int(block, 5);
        if (size > this.#limit) throw h2Error('COMPRESSION_ERROR', 'table size above the limit');
        this.#max = size;
        this.#evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = this.#int(block, 4);
        name = index === 0 ? this.#string(block) : this.#name(index);
        value = this.#string(block);
      }
      fields = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= maxListSize) out.push(name, value);
    }
    return listSize;
  }

  #int(block: Buffer, prefix: number): number {
    const mask = (1 << prefix) - 1;
    let value = block[this.#pos++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.#pos >= block.length) throw h2Error('COMPRESSION_ERROR', 'truncated integer');
      const byte = block[this.#pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) return value;
      // Nothing in a block this session accepts is anywhere near 2^28.
      if (shift > 21) throw h2Error('COMPRESSION_ERROR', 'integer too large');
    }
  }

  #string(block: Buffer): string {
    if (this.#pos >= block.length) throw h2Error('COMPRESSION_ERROR', 'truncated string');
    const huffman = (block[this.#pos]! & 0x80) !== 0;
    const length = this.#int(block, 7);
    const start = this.#pos;
    const end = start + length;
    if (end > block.length) throw h2Error('COMPRESSION_ERROR', 'string past the block');
    this.#pos = end;
    return huffman ? huffmanDecode(block, start, end) : block.toString('latin1', start, end);
  }

  #name(index: number): string {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]![0];
    return this.#names[this.#dynamic(index)]!;
  }

  #value(index: number): string {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]![1];
    return this.#values[this.#dynamic(index)]!;
  }

  /** The array position of a dynamic index. */
  #dynamic(index: number): number {
    const at = this.#names.length - (index - STATIC_TABLE.length);
    if (at < 0) throw h2Error('COMPRESSION_ERROR', `index ${index} beyond the table`);
    return at;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (size > this.#max) return;
    this.#names.push(name);
    this.#values.push(value);
    this.#size += size;
  }

  /** Drops the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#max && drop < this.#names.length) {
      this.#size -= this.#names[drop]!.length + this.#values[drop]!.length + ENTRY_OVERHEAD;
      drop++;
    }
    if (drop > 0) {
      this.#names.splice(0, drop);
      this.#values.splice(0, drop);
    }
  }
}
