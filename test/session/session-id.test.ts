import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdSigner, newSessionId } from '../../src/session/session-id.ts';

test('an id cookie whose MAC is spelled non-canonically (same bytes, other last character) is refused', () => {
  const signer = new IdSigner(['a-secret-that-is-long-enough-for-sessions!']);
  for (let i = 0; i < 200; i++) {
    const value = signer.sign(newSessionId());
    assert.ok(signer.verify(value));
    const last = value.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const index = alphabet.indexOf(last);
    // The last of 43 characters carries 4 bits: the 3 others sharing them decode to the same bytes.
    for (let low = 0; low < 4; low++) {
      const twin = alphabet[(index & ~3) | low]!;
      if (twin === last) continue;
      assert.equal(signer.verify(value.slice(0, -1) + twin), null);
    }
  }
});
