import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createSealer, type SealedPayload } from '../../src/session/sealer.ts';

const sealer = createSealer(['p'.repeat(32), 'q'.repeat(32)]);
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const b64urlSegment = fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 120 });
const fivePartToken = fc
  .tuple(b64urlSegment, b64urlSegment, b64urlSegment, b64urlSegment, b64urlSegment)
  .map((parts) => parts.join('.'));

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'replace'; at: number; char: string }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'duplicate'; segment: number }
  | { kind: 'swap'; a: number; b: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }),
  fc.record({
    kind: fc.constant('replace' as const),
    at: fc.nat(),
    char: fc.string({ minLength: 1, maxLength: 1 }),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.string({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), segment: fc.integer({ min: 0, max: 4 }) }),
  fc.record({
    kind: fc.constant('swap' as const),
    a: fc.integer({ min: 0, max: 4 }),
    b: fc.integer({ min: 0, max: 4 }),
  }),
);

function apply(token: string, m: Mutation): string {
  switch (m.kind) {
    case 'flip': {
      const i = m.at % token.length;
      const flipped = String.fromCharCode(token.charCodeAt(i) ^ (1 << m.bit));
      return token.slice(0, i) + flipped + token.slice(i + 1);
    }
    case 'replace': {
      const i = m.at % token.length;
      return token.slice(0, i) + m.char + token.slice(i + 1);
    }
    case 'insert': {
      const i = m.at % (token.length + 1);
      return token.slice(0, i) + m.text + token.slice(i);
    }
    case 'delete': {
      const i = m.at % token.length;
      return token.slice(0, i) + token.slice(i + m.count);
    }
    case 'duplicate': {
      const parts = token.split('.');
      parts.splice(m.segment, 0, parts[m.segment]!);
      return parts.join('.');
    }
    case 'swap': {
      const parts = token.split('.');
      [parts[m.a], parts[m.b]] = [parts[m.b]!, parts[m.a]!];
      return parts.join('.');
    }
  }
}

const payloadArb: fc.Arbitrary<SealedPayload> = fc.record({
  sid: fc.string({ unit: fc.constantFrom(...B64URL), minLength: 1, maxLength: 43 }),
  data: fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), {
    maxKeys: 8,
  }) as fc.Arbitrary<Record<string, unknown>>,
  createdAt: fc.integer({ min: 0, max: 2 ** 45 }),
  seenAt: fc.integer({ min: 0, max: 2 ** 45 }),
});

describe('sealer properties', () => {
  it('returns null, never throws, for arbitrary strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 600 }), async (input) => {
        assert.equal(await sealer.unseal(input), null);
      }),
      { numRuns: 400 },
    );
  });

  it('returns null for arbitrary base64url 5-part strings', async () => {
    await fc.assert(
      fc.asyncProperty(fivePartToken, async (input) => {
        assert.equal(await sealer.unseal(input), null);
      }),
      { numRuns: 400 },
    );
  });

  it('returns null for random mutations of a valid token', async () => {
    const original: SealedPayload = { sid: 'abc', data: { user: 'é😀', n: [1, 2] }, createdAt: 1, seenAt: 2 };
    const token = await sealer.seal(original);
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const mutated = mutations.reduce(apply, token);
        const result = await sealer.unseal(mutated);
        // A swap of a segment with itself (or mutations that cancel out) gives back the token: still valid.
        if (mutated === token) assert.deepEqual(result?.payload, original);
        else assert.equal(result, null, mutated);
      }),
      { numRuns: 500 },
    );
  });

  it('sealedLength matches the sealed token and the payload round-trips', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, async (payload) => {
        const token = await sealer.seal(payload);
        assert.equal(sealer.sealedLength(payload), token.length);
        const opened = await sealer.unseal(token);
        if (token.length > 4096) {
          assert.equal(opened, null);
          return;
        }
        assert.deepEqual(opened?.payload, JSON.parse(JSON.stringify(payload)));
        assert.equal(opened?.stale, false);
      }),
      { numRuns: 300 },
    );
  });
});
