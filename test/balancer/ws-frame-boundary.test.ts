import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { WsFrameBoundary } from '../../src/balancer/ws-frame-boundary.ts';

/** One RFC 6455 frame with `length` payload bytes, in the shortest length encoding, masked or not. */
function frame(length: number, masked: boolean): Buffer {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = 0x82;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(length, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([head, Buffer.alloc(length, 0x61)]);
}

test('knows it stands between frames exactly at frame ends, however the stream is cut', () => {
  const lengths = fc.oneof(fc.integer({ min: 0, max: 130 }), fc.constantFrom(65535, 65536, 70_000));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(lengths, fc.boolean()), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 300_000 }), { maxLength: 12 }),
      (frames, rawCuts) => {
        const parts = frames.map(([length, masked]) => frame(length, masked));
        const stream = Buffer.concat(parts);
        const ends = new Set<number>([0]);
        let at = 0;
        for (const p of parts) {
          at += p.length;
          ends.add(at);
        }
        const cuts = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const tracker = new WsFrameBoundary();
        let from = 0;
        for (const cut of [...cuts, stream.length]) {
          tracker.feed(stream.subarray(from, cut));
          from = Math.max(from, cut);
          assert.equal(tracker.atBoundary, ends.has(from), `at byte ${from} of ${stream.length}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
