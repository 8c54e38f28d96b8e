import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ClonesError } from '../../src/errors.ts';
import { type CookieAttributes, parseCookies, serializeCookie } from '../../src/session/cookie.ts';

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const OCTETS = [...Array(0x7e - 0x21 + 1).keys()]
  .map((i) => String.fromCharCode(0x21 + i))
  .filter((c) => !'",;\\'.includes(c));

const cookieName = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 20 });
const cookieValue = fc.string({ unit: fc.constantFrom(...OCTETS), maxLength: 200 });

// Strings rich in the characters that matter to a cookie parser, plus arbitrary unicode.
const hostile = fc.string({
  unit: fc.oneof(
    fc.constantFrom(';', '=', '"', ' ', '\t', ',', '\\', '\r', '\n', '\u0000', 'é', '😀', '\ud800'),
    fc.constantFrom(...TOKEN_CHARS),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 400,
});

// Mostly valid attributes (so the success path is exercised), sometimes hostile ones.
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: valid, weight: 9 }, { arbitrary: invalid as fc.Arbitrary<T>, weight: 1 });

const attributes: fc.Arbitrary<CookieAttributes> = fc.record(
  {
    maxAge: mostly(fc.integer({ min: 0, max: 10 ** 9 }), fc.oneof(fc.double(), hostile)),
    path: mostly(fc.constantFrom('/', '/app', '/a b'), hostile),
    domain: mostly(fc.constantFrom('example.com', '.example.com', '127.0.0.1'), hostile),
    secure: mostly(fc.constant(true), fc.oneof(fc.boolean(), hostile)),
    httpOnly: mostly(fc.boolean(), hostile),
    sameSite: mostly(fc.constantFrom('Lax', 'Strict', 'None'), hostile) as fc.Arbitrary<'Lax'>,
    partitioned: mostly(fc.boolean(), hostile),
    priority: mostly(fc.constantFrom('Low', 'Medium', 'High'), hostile) as fc.Arbitrary<'Low'>,
  },
  { requiredKeys: [] },
);

describe('cookie properties', () => {
  it('parseCookies never throws and returns only valid names and values', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ unit: 'binary', maxLength: 400 })), (header) => {
        for (const [name, values] of parseCookies(header)) {
          assert.match(name, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
          for (const value of values) {
            assert.ok(value.length <= 4096);
            assert.match(value, /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('parseCookies never throws on huge inputs and arrays', () => {
    fc.assert(
      fc.property(hostile, fc.integer({ min: 1, max: 2000 }), (chunk, times) => {
        parseCookies(chunk.repeat(times));
        parseCookies([chunk, chunk.repeat(times)]);
      }),
      { numRuns: 100 },
    );
  });

  it('serializeCookie returns a header or throws CLONES_INVALID_OPTION, nothing else', () => {
    let serialized = 0;
    fc.assert(
      fc.property(
        fc.oneof(cookieName, hostile),
        fc.oneof(cookieValue, hostile),
        attributes,
        (name, value, attrs) => {
          let header: string;
          try {
            header = serializeCookie(name, value, attrs);
            serialized++;
          } catch (err) {
            assert.ok(err instanceof ClonesError, String(err));
            assert.equal(err.code, 'CLONES_INVALID_OPTION');
            return;
          }
          // Printable ASCII only: what we emit can never split or inject a header.
          assert.match(header, /^[\x20-\x7e]+$/);
          assert.ok(header.startsWith(`${name}=${value}`));
        },
      ),
      { numRuns: 500 },
    );
    // The generators must reach the success path too, not only the refusals.
    assert.ok(serialized > 20, `only ${serialized} of 500 inputs were valid`);
  });

  it('round-trips valid names and values through a Cookie header', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(cookieName, cookieValue), { selector: ([name]) => name, maxLength: 10 }),
        (pairs) => {
          const header = pairs
            .map(([name, value]) => serializeCookie(name, value, { path: '/', httpOnly: true }).split(';')[0])
            .join('; ');
          assert.deepEqual(
            [...parseCookies(header)],
            pairs.map(([name, value]) => [name, [value]]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
