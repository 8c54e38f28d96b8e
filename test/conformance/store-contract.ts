import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionData, SessionStore, StoreBackend } from '../../src/session/stores/store.ts';
import { runtime } from './runtime.ts';
import { fresh, newKey } from './stored-session.ts';

/** What a contract run needs: a store, and how to release it and whatever server it talks to. */
export interface OpenedStore {
  /** A bare backend is run inside a RuntimeStore, as the engine runs it. */
  store: StoreBackend | SessionStore;
  cleanup(): Promise<void>;
}

/**
 * Registers the tests every session store must pass, against a real backend. `open` is called once for the
 * suite; each test uses its own random keys, so backends may be shared with other suites.
 *
 * @example
 *   storeContract('redis', async () => {
 *     const redis = await startRedis();
 *     const store = new RedisStore({ url: redis.url, connectTimeout: 1000, prefix: 'test' });
 *     return { store, cleanup: async () => { await store.close(); await redis.stop(); } };
 *   });
 */
export function storeContract(
  name: string,
  open: () => Promise<OpenedStore>,
  /**
   * The compare-and-set race's size. 32 clients x 100 increments by default; an emulator that answers in
   * milliseconds (dynalite) races fewer clients, since the retries grow with the square of the clients: the
   * property checked (every increment counted exactly once, with real conflicts) is the same.
   */
  race: { clients: number; rounds: number } = { clients: 32, rounds: 100 },
): void {
  describe(`${name} store contract`, () => {
    let opened: OpenedStore | undefined;
    let wrapped: SessionStore | undefined;
    const store = (): SessionStore => {
      assert.ok(opened && wrapped, 'the store did not open');
      return wrapped;
    };
    before(async () => {
      opened = await open();
      wrapped = runtime(opened.store);
    });
    after(async () => {
      await opened?.cleanup();
    });

    it('get answers null for an unknown key', async () => {
      assert.equal(await store().get(newKey()), null);
    });

    it('create then get returns the session as written', async () => {
      const key = newKey();
      const session = fresh({ user: 'ada', cart: [1, 2] });
      assert.deepEqual(await store().create(key, session), { ok: true, version: 1 });
      assert.deepEqual(await store().get(key), session);
    });

    it('create on an existing key answers conflict and keeps the first session', async () => {
      const key = newKey();
      const first = fresh({ who: 'first' });
      await store().create(key, first);
      assert.deepEqual(await store().create(key, fresh({ who: 'second' })), {
        ok: false,
        reason: 'conflict',
      });
      assert.deepEqual(await store().get(key), first);
    });

    it('patch sets and deletes top-level keys, keeps the others, and bumps the version', async () => {
      const key = newKey();
      const session = fresh({ a: 1, b: 2, c: { deep: true } });
      await store().create(key, session);
      const r = await store().patch(key, { set: { b: 20, d: 'new' }, del: ['a'] });
      assert.deepEqual(r, { ok: true, version: 2 });
      const got = await store().get(key);
      assert.deepEqual(got?.data, { b: 20, c: { deep: true }, d: 'new' });
      assert.equal(got?.version, 2);
      assert.equal(got?.createdAt, session.createdAt);
      assert.equal(got?.expiresAt, session.expiresAt, 'a patch without expiresAt keeps the expiry');
    });

    it('patch with expiresAt also moves the expiry', async () => {
      const key = newKey();
      const session = fresh({ a: 1 });
      await store().create(key, session);
      const later = session.expiresAt + 30_000;
      assert.deepEqual(await store().patch(key, { set: { a: 2 }, del: [] }, { expiresAt: later }), {
        ok: true,
        version: 2,
      });
      const got = await store().get(key);
      assert.equal(got?.expiresAt, later);
      assert.deepEqual(got?.data, { a: 2 });
    });

    it('patch on a missing key answers gone and creates nothing', async () => {
      const key = newKey();
      assert.deepEqual(await store().patch(key, { set: { a: 1 }, del: [] }), { ok: false, reason: 'gone' });
      assert.equal(await store().get(key), null);
    });

    it('patch with a stale ifVersion answers conflict; with the current one it succeeds', async () => {
      const key = newKey();
      await store().create(key, fresh({ n: 0 }));
      assert.deepEqual(await store().patch(key, { set: { n: 1 }, del: [] }, { ifVersion: 1 }), {
        ok: true,
        version: 2,
      });
      const lost = await store().patch(key, { set: { n: 99 }, del: [] }, { ifVersion: 1 });
      assert.equal(lost.ok, false);
      assert.equal(!lost.ok && lost.reason, 'conflict');
      if (!lost.ok && lost.reason === 'conflict' && lost.current) {
        // A store that returns the session with a conflict must return it as it is now.
        const { data, version } = lost.current;
        assert.deepEqual({ data, version }, { data: { n: 1 }, version: 2 });
      }
      assert.deepEqual((await store().get(key))?.data, { n: 1 }, 'the losing patch changed nothing');
      assert.deepEqual(await store().patch(key, { set: { n: 2 }, del: [] }, { ifVersion: 2 }), {
        ok: true,
        version: 3,
      });
      const got = await store().get(key);
      assert.deepEqual(got?.data, { n: 2 });
      assert.equal(got?.version, 3);
    });

    it('32 concurrent writers patching different keys all persist', async () => {
      const key = newKey();
      await store().create(key, fresh({ base: true }));
      const writers = Array.from({ length: 32 }, (_, i) =>
        store().patch(key, { set: { [`w${i}`]: i }, del: [] }),
      );
      const results = await Promise.all(writers);
      assert.ok(results.every((r) => r.ok));
      const versions = results.map((r) => (r.ok ? r.version : 0)).sort((x, y) => x - y);
      assert.deepEqual(
        versions,
        Array.from({ length: 32 }, (_, i) => i + 2),
        'each patch got its own version',
      );
      const got = await store().get(key);
      const expected: SessionData = { base: true };
      for (let i = 0; i < 32; i++) expected[`w${i}`] = i;
      assert.deepEqual(got?.data, expected);
      assert.equal(got?.version, 33);
    });

    const total = race.clients * race.rounds;
    it(`${race.clients} clients x ${race.rounds} compare-and-set increments end at exactly ${total}`, async () => {
      const key = newKey();
      // Ten minutes: the race is the point, however slow the backend.
      await store().create(key, fresh({ n: 0 }, 600_000));
      let conflicts = 0;
      const client = async () => {
        for (let i = 0; i < race.rounds; i++) {
          for (;;) {
            const current = await store().get(key);
            assert.ok(current, 'the session disappeared');
            const n = current.data.n as number;
            const r = await store().patch(
              key,
              { set: { n: n + 1 }, del: [] },
              { ifVersion: current.version },
            );
            if (r.ok) break;
            assert.equal(r.reason, 'conflict');
            conflicts++;
          }
        }
      };
      await Promise.all(Array.from({ length: race.clients }, client));
      const got = await store().get(key);
      assert.equal(got?.data.n, total);
      assert.equal(got?.version, total + 1);
      assert.ok(conflicts > 0, 'the clients really raced');
    });

    it('touch moves expiresAt without changing data or version', async () => {
      const key = newKey();
      const session = fresh({ keep: 'me' });
      await store().create(key, session);
      await store().patch(key, { set: { more: 1 }, del: [] });
      const later = session.expiresAt + 60_000;
      assert.equal(await store().touch(key, later), true);
      assert.deepEqual(await store().get(key), {
        data: { keep: 'me', more: 1 },
        version: 2,
        createdAt: session.createdAt,
        expiresAt: later,
      });
    });

    it('touch on a missing key answers false and creates nothing', async () => {
      const key = newKey();
      assert.equal(await store().touch(key, Date.now() + 60_000), false);
      assert.equal(await store().get(key), null);
    });

    it('a session whose expiresAt has passed reads as null; touch is false, patch gone, create allowed', async () => {
      const key = newKey();
      const now = Date.now();
      await store().create(key, {
        data: { old: true },
        version: 1,
        createdAt: now - 10_000,
        expiresAt: now - 1,
      });
      assert.equal(await store().get(key), null);
      assert.equal(await store().touch(key, now + 60_000), false);
      assert.deepEqual(await store().patch(key, { set: { x: 1 }, del: [] }), { ok: false, reason: 'gone' });
      assert.equal(await store().get(key), null, 'neither touch nor patch revived it');
      const again = fresh({ reborn: true });
      assert.deepEqual(await store().create(key, again), { ok: true, version: 1 }, 'an expired key is free');
      assert.deepEqual(await store().get(key), again);
    });

    it('a session expires by itself once expiresAt is reached', async () => {
      const key = newKey();
      await store().create(key, fresh({ brief: true }, 1000));
      assert.notEqual(await store().get(key), null);
      await sleep(1100);
      assert.equal(await store().get(key), null);
      assert.equal(await store().touch(key, Date.now() + 60_000), false);
      assert.deepEqual(await store().patch(key, { set: { late: 1 }, del: [] }), {
        ok: false,
        reason: 'gone',
      });
      assert.equal(await store().get(key), null);
    });

    it('destroy leaves a tombstone: get null, patch gone, touch false, create gone', async () => {
      const key = newKey();
      await store().create(key, fresh({ user: 'ada' }));
      await store().destroy(key, Date.now() + 60_000);
      assert.equal(await store().get(key), null);
      assert.deepEqual(await store().patch(key, { set: { user: 'eve' }, del: [] }), {
        ok: false,
        reason: 'gone',
      });
      assert.deepEqual(await store().patch(key, { set: {}, del: [] }, { ifVersion: 1 }), {
        ok: false,
        reason: 'gone',
      });
      assert.equal(await store().touch(key, Date.now() + 60_000), false);
      assert.deepEqual(await store().create(key, fresh({ user: 'eve' })), { ok: false, reason: 'gone' });
      assert.equal(await store().get(key), null, 'nothing revived the destroyed session');
    });

    it('a tombstone blocks create only until tombstoneUntil', async () => {
      const key = newKey();
      await store().destroy(key, Date.now() + 300);
      assert.deepEqual(await store().create(key, fresh({})), { ok: false, reason: 'gone' });
      await sleep(400);
      assert.deepEqual(await store().create(key, fresh({ later: true })), { ok: true, version: 1 });
      assert.deepEqual((await store().get(key))?.data, { later: true });
    });

    it('values round-trip as JSON: nested objects, unicode, numbers', async () => {
      const key = newKey();
      const data: SessionData = {
        nested: { a: { b: { c: [1, { d: null }, 'x'] } }, empty: {}, list: [] },
        unicode: 'héllo wörld ✓ 日本語 😀 \u2028',
        quotes: 'she said "hi"\n\ttab \\ backslash',
        numbers: [0, -1, Math.PI, 1e21, -2.5e-7, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
        booleans: [true, false],
        nothing: null,
        emptyString: '',
        'key with spaces:and:colons.and.dots': 1,
        'ключ-😀': 'unicode key',
        'we"ird\\ /key\n\u0001': 'a key JSON must escape',
      };
      const session = fresh(data);
      await store().create(key, session);
      assert.deepEqual((await store().get(key))?.data, data);
      const patched = { deeper: { list: [[1, 2], [3]], text: '∑ x²', big: 2 ** 52 }, unicode: 'çà 🎉' };
      await store().patch(key, { set: patched, del: ['numbers'] });
      const { numbers: _removed, ...rest } = data;
      assert.deepEqual((await store().get(key))?.data, { ...rest, ...patched });
    });

    it('get returns a copy: changing it does not change the store', async () => {
      const key = newKey();
      await store().create(key, fresh({ list: [1] }));
      const got = await store().get(key);
      assert.ok(got);
      (got.data.list as number[]).push(2);
      assert.deepEqual((await store().get(key))?.data, { list: [1] });
    });

    describe('sessions by user', () => {
      /** Why the by-user tests cannot run on this store, or undefined when they can. */
      let unsupported: string | undefined;
      before(async () => {
        const s = opened?.store;
        if (!s?.bindUser || !s.listByUser || !s.destroyByUser) {
          unsupported = `${name} keeps no per-user index (CLONES_SESSION_BY_USER_UNSUPPORTED)`;
          return;
        }
        try {
          await s.listByUser('probe');
        } catch (err) {
          if ((err as { code?: string }).code !== 'CLONES_SESSION_BY_USER_UNSUPPORTED') throw err;
          unsupported = `${name} answers CLONES_SESSION_BY_USER_UNSUPPORTED`;
        }
      });
      const user = () => `user-${randomBytes(6).toString('hex')}`;

      it('bindUser records the user; listByUser lists exactly its live sessions', async (t) => {
        if (unsupported) return t.skip(unsupported);
        const s = store();
        const u = user();
        const [a, b, other] = [newKey(), newKey(), newKey()];
        const sa = fresh({ n: 1 });
        for (const k of [a, b, other]) await s.create(k, k === a ? sa : fresh({ n: 2 }));
        const until = Date.now() + 120_000;
        assert.equal(await s.bindUser!(a, u, until), true);
        assert.equal(await s.bindUser!(b, u, until), true);
        assert.equal(await s.bindUser!(other, user(), until), true);
        assert.equal((await s.get(a))?.userId, u);
        const listed = (await s.listByUser!(u)).sort((x, y) => x.key.localeCompare(y.key));
        const want = [a, b].sort();
        assert.deepEqual(
          listed.map((r) => r.key),
          want,
        );
        const first = listed.find((r) => r.key === a);
        assert.deepEqual(first, { key: a, createdAt: sa.createdAt, expiresAt: sa.expiresAt });
        await s.destroy(b, Date.now() + 60_000);
        assert.deepEqual(
          (await s.listByUser!(u)).map((r) => r.key),
          [a],
          'a destroyed session is no longer listed',
        );
        assert.deepEqual(await s.listByUser!(user()), []);
      });

      it('bindUser on a missing or destroyed session answers false', async (t) => {
        if (unsupported) return t.skip(unsupported);
        const s = store();
        const u = user();
        assert.equal(await s.bindUser!(newKey(), u, Date.now() + 60_000), false);
        const k = newKey();
        await s.create(k, fresh({}));
        await s.destroy(k, Date.now() + 60_000);
        assert.equal(await s.bindUser!(k, u, Date.now() + 60_000), false);
        assert.deepEqual(await s.listByUser!(u), []);
      });

      it('destroyByUser leaves tombstones on all but the kept session and counts them', async (t) => {
        if (unsupported) return t.skip(unsupported);
        const s = store();
        const u = user();
        const keys = [newKey(), newKey(), newKey()];
        const stranger = newKey();
        const until = Date.now() + 120_000;
        for (const k of [...keys, stranger]) await s.create(k, fresh({ k }));
        for (const k of keys) await s.bindUser!(k, u, until);
        await s.bindUser!(stranger, user(), until);
        const [keep, ...gone] = keys as [string, string, string];
        assert.equal(await s.destroyByUser!(u, keep, Date.now() + 60_000), 2);
        for (const k of gone) {
          assert.equal(await s.get(k), null);
          assert.deepEqual(await s.patch(k, { set: { back: true }, del: [] }), { ok: false, reason: 'gone' });
          assert.equal(await s.touch(k, Date.now() + 60_000), false);
          assert.deepEqual(await s.create(k, fresh({})), { ok: false, reason: 'gone' });
        }
        assert.deepEqual((await s.get(keep))?.data, { k: keep });
        assert.deepEqual((await s.get(stranger))?.data, { k: stranger });
        assert.deepEqual(
          (await s.listByUser!(u)).map((r) => r.key),
          [keep],
        );
        assert.equal(await s.destroyByUser!(u, undefined, Date.now() + 60_000), 1);
        assert.equal(await s.get(keep), null);
        assert.deepEqual(await s.listByUser!(u), []);
      });
    });
  });
}
