import assert from 'node:assert/strict';
import { createHash, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompactEncrypt } from 'jose';
import { ClonesError } from '../../src/errors.ts';
import {
  createSealer,
  SEALER_HKDF_INFO,
  SEALER_HKDF_SALT,
  type SealedPayload,
} from '../../src/session/sealer.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(40);
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function payload(data: Record<string, unknown> = { user: 42, cart: [1, 2, 3] }): SealedPayload {
  return { sid: 'q0VbqZ7Gm3rC4U1fS9xPdw', data, createdAt: 1_700_000_000_000, seenAt: 1_700_000_123_456 };
}

/** The key and kid as docs/session-format.md tells another language to derive them. */
function derive(secret: string): { key: Uint8Array; kid: string } {
  const key = new Uint8Array(hkdfSync('sha256', secret, SEALER_HKDF_SALT, SEALER_HKDF_INFO, 32));
  return { key, kid: createHash('sha256').update(key).digest('base64url').slice(0, 8) };
}

async function joseToken(
  header: Record<string, unknown>,
  key: Uint8Array,
  plaintext: string,
): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader(header as { alg: string; enc: string })
    .encrypt(key);
}

const validPlaintext = JSON.stringify({ i: 'sid1', d: { a: 1 }, c: 1, t: 2 });

describe('sealer', () => {
  it('round-trips a payload', async () => {
    const sealer = createSealer([A]);
    const p = payload({ name: 'Zoë 😀 東京', nested: { list: [null, true, 1.5, 'x'] }, empty: {} });
    const token = await sealer.seal(p);
    assert.match(token, /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(await sealer.unseal(token), { payload: p, stale: false });
  });

  it('round-trips empty data and seals differently each time (random IV)', async () => {
    const sealer = createSealer([A]);
    const p = payload({});
    const [one, two] = [await sealer.seal(p), await sealer.seal(p)];
    assert.notEqual(one, two);
    assert.deepEqual((await sealer.unseal(one))?.payload, p);
    assert.deepEqual((await sealer.unseal(two))?.payload, p);
  });

  it('emits the documented protected header', async () => {
    const token = await createSealer([A]).seal(payload());
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));
    assert.deepEqual(header, { alg: 'dir', enc: 'A256GCM', kid: derive(A).kid });
  });

  it('unseals with previous secrets and reports stale tokens', async () => {
    const old = await createSealer([A]).seal(payload());
    const rotated = createSealer([B, A]);
    assert.deepEqual(await rotated.unseal(old), { payload: payload(), stale: true });
    assert.deepEqual(await createSealer([A]).unseal(old), { payload: payload(), stale: false });
    const fresh = await rotated.seal(payload());
    assert.equal((await rotated.unseal(fresh))?.stale, false);
    // Once the old secret is dropped, its tokens are gone.
    assert.equal(await createSealer([B]).unseal(old), null);
    // A three-key list finds the oldest key too.
    assert.equal((await createSealer([C, B, A]).unseal(old))?.stale, true);
  });

  it('refuses a token sealed with a different secret', async () => {
    const token = await createSealer([A]).seal(payload());
    assert.equal(await createSealer([B]).unseal(token), null);
    assert.equal(await createSealer([C, B]).unseal(token), null);
  });

  it('refuses every single-character change', async () => {
    const sealer = createSealer([A]);
    const token = await sealer.seal(payload({ k: 'v' }));
    const checks: Promise<void>[] = [];
    for (let i = 0; i < token.length; i++) {
      const original = token[i]!;
      // The next alphabet character flips low bits (the ones decoders may ignore), '.' breaks the shape.
      const next = original === '.' ? 'A' : B64URL[(B64URL.indexOf(original) + 1) % 64]!;
      for (const replacement of new Set([next, '.', original === 'A' ? 'B' : 'A'])) {
        if (replacement === original) continue;
        const mutated = token.slice(0, i) + replacement + token.slice(i + 1);
        checks.push(
          sealer
            .unseal(mutated)
            .then((r) => assert.equal(r, null, `position ${i}: ${original} -> ${replacement}`)),
        );
      }
    }
    await Promise.all(checks);
  });

  it('refuses every truncation and extension', async () => {
    const sealer = createSealer([A]);
    const token = await sealer.seal(payload());
    for (let length = 0; length < token.length; length++) {
      assert.equal(await sealer.unseal(token.slice(0, length)), null, `prefix of ${length}`);
      assert.equal(await sealer.unseal(token.slice(length + 1)), null, `suffix from ${length + 1}`);
    }
    assert.equal(await sealer.unseal(`${token}A`), null);
    assert.equal(await sealer.unseal(`${token}.`), null);
    assert.equal(await sealer.unseal(` ${token}`), null);
  });

  it('refuses oversized, non-ASCII and non-string input without throwing', async () => {
    const sealer = createSealer([A]);
    const token = await sealer.seal(payload());
    const [h, , iv, ct, tag] = token.split('.');
    assert.equal(await sealer.unseal(`${h}..${iv}.${ct}${'A'.repeat(4096)}.${tag}`), null);
    assert.equal(await sealer.unseal('x'.repeat(1_000_000)), null);
    assert.equal(await sealer.unseal(`${token.slice(0, -1)}é`), null);
    assert.equal(await sealer.unseal(''), null);
    for (const bad of [undefined, null, 42, {}, [], Symbol('x')]) {
      assert.equal(await sealer.unseal(bad as unknown as string), null);
    }
  });

  it('computes sealedLength exactly, without encrypting', async () => {
    const sealer = createSealer([A, B]);
    const datas: Record<string, unknown>[] = [
      {},
      { a: '' },
      { a: 'x' },
      { a: 'xx' },
      { a: 'xxx' },
      { unicode: 'é😀東京\u0000\u2028', escapes: '"\\\n\t' },
      { lone: '\ud800' },
      { big: 'z'.repeat(3000) },
      { nums: [0, -0, 1e21, 1.5e-7, Number.MAX_SAFE_INTEGER] },
    ];
    for (let n = 0; n < 40; n++) datas.push({ s: 'é'.repeat(n), t: 'a'.repeat(n % 7) });
    for (const data of datas) {
      const p = payload(data);
      assert.equal(sealer.sealedLength(p), (await sealer.seal(p)).length, JSON.stringify(data));
    }
  });

  it('accepts a token made directly with jose from the documented key derivation', async () => {
    const { key, kid } = derive(A);
    const token = await joseToken({ alg: 'dir', enc: 'A256GCM', kid }, key, validPlaintext);
    assert.deepEqual(await createSealer([A]).unseal(token), {
      payload: { sid: 'sid1', data: { a: 1 }, createdAt: 1, seenAt: 2 },
      stale: false,
    });
  });

  it('refuses jose tokens whose protected header differs from ours', async () => {
    const sealer = createSealer([A]);
    const { key, kid } = derive(A);
    const refused = [
      await joseToken({ alg: 'dir', enc: 'A128GCM', kid }, key.subarray(0, 16), validPlaintext),
      await joseToken({ alg: 'dir', enc: 'A256GCM' }, key, validPlaintext),
      await joseToken({ alg: 'dir', enc: 'A256GCM', kid: 'unknown1' }, key, validPlaintext),
      await joseToken({ enc: 'A256GCM', alg: 'dir', kid }, key, validPlaintext),
      await joseToken({ alg: 'dir', enc: 'A256GCM', kid, typ: 'JWT' }, key, validPlaintext),
      await joseToken({ alg: 'A256KW', enc: 'A256GCM', kid }, key, validPlaintext),
      await joseToken({ alg: 'dir', enc: 'A256CBC-HS512', kid }, new Uint8Array(64), validPlaintext),
    ];
    for (const token of refused) assert.equal(await sealer.unseal(token), null, token);
  });

  it('refuses authentic tokens whose plaintext is not our payload', async () => {
    const sealer = createSealer([A]);
    const { key, kid } = derive(A);
    const header = { alg: 'dir', enc: 'A256GCM', kid };
    for (const plaintext of [
      'not json',
      '',
      'null',
      '[]',
      '"x"',
      '{}',
      JSON.stringify({ i: '', d: {}, c: 1, t: 2 }),
      JSON.stringify({ i: 'x', d: [], c: 1, t: 2 }),
      JSON.stringify({ i: 'x', d: null, c: 1, t: 2 }),
      JSON.stringify({ i: 'x', d: {}, c: '1', t: 2 }),
      JSON.stringify({ i: 'x', d: {}, c: 1 }),
      JSON.stringify({ i: 1, d: {}, c: 1, t: 2 }),
    ]) {
      assert.equal(await sealer.unseal(await joseToken(header, key, plaintext)), null, plaintext);
    }
  });

  it('requires at least one secret', () => {
    assert.throws(
      () => createSealer([]),
      (err: unknown) => err instanceof ClonesError && err.code === 'CLONES_INVALID_OPTION',
    );
  });
});
