import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeTracker, diff } from '../../src/session/change-tracker.ts';
import { MemoryStore } from '../../src/session/stores/memory-store.ts';

test('only changed keys make the patch; nested changes are found', () => {
  const t = new ChangeTracker({ a: 1, cart: [1], keep: { x: 1 } });
  assert.equal(t.dirty, false);
  (t.read('cart') as number[]).push(2);
  t.read('keep');
  t.write('b', 2);
  t.remove('a');
  assert.deepEqual(t.patch(), { set: { cart: [1, 2], b: 2 }, del: ['a'] });
});

test('prototype names are neither data nor a way to change the prototype', async () => {
  const t = new ChangeTracker({});
  assert.equal(t.read('toString'), undefined);
  assert.equal(t.read('constructor'), undefined);
  t.write('__proto__', { polluted: true });
  const patch = t.patch();
  assert.deepEqual(Object.keys(patch.set), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const store = new MemoryStore();
  const now = Date.now();
  await store.create('k', { data: {}, version: 1, createdAt: now, expiresAt: now + 60_000 });
  await store.patch('k', patch);
  const back = await store.get('k');
  assert.equal(Object.getPrototypeOf(back!.data), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(back!.data, '__proto__')?.value, { polluted: true });
  assert.deepEqual(diff({ a: 1 }, { a: 1, b: undefined }), { set: {}, del: [] });
});

test('values that are not JSON are refused where they are assigned', () => {
  const t = new ChangeTracker({});
  assert.throws(() => t.write('f', () => 1), { code: 'CLONES_SESSION_NOT_SERIALIZABLE' });
  assert.throws(() => t.write('big', 1n), { code: 'CLONES_SESSION_NOT_SERIALIZABLE' });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.throws(() => t.write('c', cycle), { code: 'CLONES_SESSION_NOT_SERIALIZABLE' });
  assert.equal(t.dirty, false);
});
