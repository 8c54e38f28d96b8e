import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CookieSigner } from '../../src/balancer/cookie-signer.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('a sticky cookie is accepted in its canonical spelling only', () => {
  const signer = new CookieSigner(randomBytes(32));
  const now = Date.now();
  let checked = 0;
  for (let i = 0; i < 50; i++) {
    const cookie = signer.sign(`clone-${i}`, now + 60_000);
    assert.equal(signer.verify(cookie, now), `clone-${i}`);
    // A 16-byte MAC is 22 base64url characters: the last one carries 2 bits of the MAC and 4 unused bits,
    // so 15 other characters decode to the same bytes. Each of them must be refused.
    const last = cookie.at(-1)!;
    for (const other of ALPHABET) {
      if (other === last) continue;
      const forged = cookie.slice(0, -1) + other;
      const sameBytes = Buffer.from(forged.slice(forged.lastIndexOf('.') + 1), 'base64url').equals(
        Buffer.from(cookie.slice(cookie.lastIndexOf('.') + 1), 'base64url'),
      );
      if (sameBytes) checked++;
      assert.equal(signer.verify(forged, now), undefined, `accepted ${forged} for ${cookie}`);
    }
  }
  assert.ok(checked >= 50 * 15, `only ${checked} other spellings with the same bytes were tried`);
});
