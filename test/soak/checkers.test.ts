// Each soak checker on a small recorded history: the clean one passes every checker, and each planted
// violation is caught by its checker (a checker that cannot fail would prove nothing).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  bounded,
  checkAll,
  codedErrors,
  documentedCodes,
  noLostUpdate,
  noOldRelease,
  noResurrectedSession,
  readYourWrites,
} from '../../scripts/soak/checkers.ts';
import type { History, Op } from '../../scripts/soak/history.ts';

const codes = documentedCodes(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'));
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

/** One user's clean life: log in, two adds, a read, profile write and read, a deploy, logout, old cookie. */
function clean(): History {
  let id = 0;
  const op = (o: Partial<Op> & Pick<Op, 'kind' | 'start'>): Op => ({
    id: ++id,
    user: 'u1',
    end: o.start + 5,
    status: 200,
    release: A,
    sid: 's1',
    ...o,
  });
  return {
    seed: 1,
    timeoutMs: 5000,
    initialRelease: A,
    failovers: [],
    faults: [],
    deploys: [{ start: 200, end: 300, ok: true, release: B }],
    ops: [
      op({ kind: 'login', start: 0, status: 303, sid: undefined }),
      op({ kind: 'cart-add', start: 10, status: 303, item: 'apple' }),
      op({ kind: 'cart-add', start: 10, status: 303, item: 'bread' }),
      op({ kind: 'cart-read', start: 20, cart: ['bread', 'apple'], authedAs: 'u1' }),
      op({ kind: 'profile-write', start: 30, value: 1 }),
      op({ kind: 'profile-read', start: 40, value: 1, authedAs: 'u1' }),
      // During the deploy either release may answer.
      op({ kind: 'cart-read', start: 250, release: B, cart: ['apple', 'bread'], authedAs: 'u1' }),
      op({ kind: 'cart-read', start: 260, release: A, cart: ['apple', 'bread'], authedAs: 'u1' }),
      op({ kind: 'logout', start: 400, status: 303, release: B }),
      op({ kind: 'old-cookie', start: 410, release: B, authedAs: null }),
      // A coded 503 and a timeout within the bound are allowed.
      op({ kind: 'cart-read', start: 420, status: 503, code: 'CLONES_SESSION_STORE_TIMEOUT', release: B }),
      op({ kind: 'cart-read', start: 430, end: 5430, status: 0, timedOut: true, release: undefined }),
    ],
  };
}

test('a clean history passes every checker, and each checker had evidence to look at', () => {
  const results = checkAll(clean(), codes);
  for (const r of results) {
    assert.deepEqual(r.violations, [], r.name);
    assert.ok(r.checked > 0, `${r.name} checked nothing`);
  }
});

test('no-lost-update: an acknowledged add missing from a later read; inside a failover window it is counted apart', () => {
  const h = clean();
  h.ops[3]!.cart = ['bread'];
  const r = noLostUpdate(h);
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, /lacks apple added by op 2/);
  h.failovers.push({ at: 18, windowMs: 1000 });
  const w = noLostUpdate(h);
  assert.deepEqual(w.violations, []);
  assert.equal(w.inFailoverWindow?.length, 1);
  // An add still in flight when the read was sent is not owed to it.
  const h2 = clean();
  h2.ops[2]!.end = 25;
  h2.ops[3]!.cart = ['apple'];
  assert.deepEqual(noLostUpdate(h2).violations, []);
});

test('read-your-writes: a read older than the same user acknowledged write', () => {
  const h = clean();
  h.ops[5]!.value = null;
  assert.equal(readYourWrites(h).violations.length, 1);
  h.ops[5]!.value = 0;
  assert.match(readYourWrites(h).violations[0]!.message, /read 0 after writing 1/);
});

test('no-resurrected-session: the old cookie answered as logged in after the logout returned', () => {
  const h = clean();
  h.ops[9]!.authedAs = 'u1';
  const r = noResurrectedSession(h);
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, /after its logout/);
});

test('no-old-release: the old release answers after the deploy returned; a failed deploy leaves the old one current', () => {
  const h = clean();
  h.ops[8]!.release = A;
  assert.equal(noOldRelease(h).violations.length, 1);
  const failed = clean();
  failed.deploys[0]!.ok = false;
  // After a failed deploy returned, its release must not answer.
  assert.equal(noOldRelease(failed).violations.length, 3);
});

test('coded-5xx: a 5xx without a code, and one with a code docs/errors.md does not list', () => {
  const h = clean();
  h.ops[10]!.code = undefined;
  assert.match(codedErrors(h, codes).violations[0]!.message, /without an error code/);
  h.ops[10]!.code = 'CLONES_NOT_A_CODE';
  assert.match(codedErrors(h, codes).violations[0]!.message, /undocumented code CLONES_NOT_A_CODE/);
  assert.ok(codes.has('CLONES_BALANCER_NO_TARGET') && codes.size > 40);
});

test('bounded: an answer far past the client bound, and an op that never ended', () => {
  const h = clean();
  h.ops[11]!.end = h.ops[11]!.start + 9000;
  h.ops[0]!.end = Number.NaN;
  const r = bounded(h);
  assert.equal(r.violations.length, 2);
});
