import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { H2ProtocolError } from '../../src/balancer/h2/h2-error.ts';
import { HpackDecoder } from '../../src/balancer/h2/hpack-decoder.ts';
import { encodeResponse } from '../../src/balancer/h2/hpack-encoder.ts';
import { huffmanDecode } from '../../src/balancer/h2/huffman.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Decodes blocks in order on one decoder, as one connection would. */
function decodeAll(blocks: string[]): string[][] {
  const hpack = new HpackDecoder(4096);
  return blocks.map((b) => {
    const out: string[] = [];
    hpack.decode(hex(b), out, 1 << 20);
    return out;
  });
}

const FIRST = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'];
const SECOND = [...FIRST, 'cache-control', 'no-cache'];
const THIRD = [
  ':method',
  'GET',
  ':scheme',
  'https',
  ':path',
  '/index.html',
  ':authority',
  'www.example.com',
  'custom-key',
  'custom-value',
];

const isCompressionError = (err: unknown): boolean => err instanceof H2ProtocolError && err.code === 0x9;

describe('HPACK (RFC 7541)', () => {
  test('Appendix C.3: three requests without Huffman coding share the dynamic table', () => {
    const got = decodeAll([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]);
    assert.deepEqual(got, [FIRST, SECOND, THIRD]);
  });

  test('Appendix C.4: the same requests with Huffman coding', () => {
    const got = decodeAll([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]);
    assert.deepEqual(got, [FIRST, SECOND, THIRD]);
  });

  test('Huffman: padding longer than 7 bits, padding that is not all ones, and EOS are COMPRESSION_ERROR', () => {
    assert.equal(huffmanDecode(hex('f1e3c2e5f23a6ba0ab90f4ff'), 0, 12), 'www.example.com');
    // "www.example.com" plus a whole byte of ones.
    assert.throws(() => huffmanDecode(hex('f1e3c2e5f23a6ba0ab90f4ffff'), 0, 13), isCompressionError);
    // The last byte's padding with a zero bit in it.
    assert.throws(() => huffmanDecode(hex('f1e3c2e5f23a6ba0ab90f4fe'), 0, 12), isCompressionError);
    // EOS (30 ones) inside the string.
    assert.throws(() => huffmanDecode(hex('ffffffff'), 0, 4), isCompressionError);
  });

  test('coding errors are COMPRESSION_ERROR: bad index, table size above the limit or after a field, truncation', () => {
    const bad = (block: string): void => {
      assert.throws(() => new HpackDecoder(4096).decode(hex(block), [], 1 << 20), isCompressionError, block);
    };
    bad('80'); // index 0
    bad('be'); // dynamic index 1 of an empty table
    bad('3fe21f'); // size update to 4,097 (limit 4,096)
    bad('82 20'); // size update after a field
    bad('41 0f 7777'); // string past the block
    bad('ff ff ff ff ff 7f'); // integer too large
  });

  test('a size update evicts; a list past the limit is decoded (the table stays in step) but not kept', () => {
    const hpack = new HpackDecoder(4096);
    const one: string[] = [];
    hpack.decode(hex('4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'), one, 1 << 20);
    assert.deepEqual(one, ['custom-key', 'custom-value']);
    // Size 0 empties the table: index 62 is then gone.
    assert.throws(() => hpack.decode(hex('20 be'), [], 1 << 20), isCompressionError);
    const two = new HpackDecoder(4096);
    const kept: string[] = [];
    const size = two.decode(hex('4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf be'), kept, 60);
    assert.equal(size, 2 * (10 + 12 + 32));
    assert.deepEqual(kept, ['custom-key', 'custom-value']);
    const again: string[] = [];
    two.decode(hex('be'), again, 1 << 20);
    assert.deepEqual(again, ['custom-key', 'custom-value'], 'the entry was added while over the limit');
  });

  test('encodeResponse: indexed statuses, literal ones, static names by index, the rest literal', () => {
    const decode = (block: Buffer): string[] => {
      const out: string[] = [];
      new HpackDecoder(4096).decode(block, out, 1 << 20);
      return out;
    };
    assert.deepEqual(decode(encodeResponse(200, ['content-type', 'text/plain', 'x-long', 'v'.repeat(300)])), [
      ':status',
      '200',
      'content-type',
      'text/plain',
      'x-long',
      'v'.repeat(300),
    ]);
    assert.deepEqual(decode(encodeResponse(431, ['set-cookie', 'a=1', 'set-cookie', 'b=2'])), [
      ':status',
      '431',
      'set-cookie',
      'a=1',
      'set-cookie',
      'b=2',
    ]);
    assert.equal(encodeResponse(404, [])[0], 0x8d, ':status 404 is static index 13');
    assert.deepEqual([...encodeResponse(200, [], 0, 0)], [0x20, 0x88], 'a table size update to 0, then :status 200');
    const framed = encodeResponse(200, [], 9);
    assert.equal(framed.length, 10, 'room left for the frame header');
  });
});
