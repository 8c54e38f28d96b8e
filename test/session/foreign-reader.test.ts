import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CookieClient } from '../harness/cookie-client.ts';
import { startRedis } from '../harness/redis-server.ts';
import { SECRET, startSessionApp } from '../harness/session-app.ts';

// Issue 5 item 9: a service that shares the sessions reads them from the store with nothing but
// docs/session-format.md. The reader is a separate plain-Node script that imports nothing from this project.
const READER = fileURLToPath(new URL('../fixtures/read-session.mjs', import.meta.url));
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readForeign(cookie: string, url: string, secret: string | undefined, prefix = 'clones') {
  const env = { ...process.env, SESSION_SECRET: secret ?? '' };
  // Plain node, not tsx: the reader must stand on its own.
  const { stdout } = await run(process.execPath, [READER, cookie, url, prefix], { env, timeout: 20_000 });
  return JSON.parse(stdout);
}

/** The value of the session cookie the library set, as a browser would send it back. */
function cookieValue(c: CookieClient): string {
  const value = c.jar.get('clones.sid');
  assert.ok(value, 'the library set its session cookie');
  return value;
}

const DATA = { user: 'Zoë', cart: [1, { sku: 'a"b', qty: 2 }], nested: { deep: [null, true, 1.5] }, n: 0 };

function foreignReaderSuite(name: string, setup: () => Promise<{ url: string; cleanup(): Promise<void> }>) {
  describe(`${name}: a session read by a script that knows only docs/session-format.md`, () => {
    let url = '';
    let cleanup = async () => {};
    const closers: Array<() => Promise<void>> = [];
    const app = async (options: Parameters<typeof startSessionApp>[0] = {}) => {
      const a = await startSessionApp({ store: url, ...options });
      closers.push(() => a.close());
      return a;
    };
    before(async () => {
      ({ url, cleanup } = await setup());
    });
    after(async () => {
      for (const close of closers) await close();
      await cleanup();
    });

    test('reads the data the library wrote, with its version and times', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      for (const [k, v] of Object.entries(DATA)) {
        await c.post(`/set?k=${k}&v=${encodeURIComponent(JSON.stringify(v))}`);
      }
      await c.post('/incr?k=n');
      const expected = (await c.get('/get')).body.data;
      assert.deepEqual(expected, { ...DATA, n: 1 });
      const t0 = Date.now();
      const got = await readForeign(cookieValue(c), url, SECRET);
      assert.deepEqual(got.data, expected);
      assert.equal(got.version, 5, 'created by the first set, then one version per write');
      assert.ok(got.createdAt <= t0 && got.expiresAt > t0, 'createdAt in the past, expiresAt in the future');
      assert.ok(got.expiresAt <= got.createdAt + 7 * 86_400_000, 'capped by the absolute timeout');
    });

    test('a cookie signed with another secret or tampered with names no session', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const value = cookieValue(c);
      assert.deepEqual((await readForeign(value, url, undefined)).data, { user: 'ada' }, 'unchecked read');
      assert.equal(await readForeign(value, url, 'another-secret-that-is-at-least-32-bytes!'), null);
      const flipped = value.slice(0, -2) + (value.at(-2) === 'A' ? 'B' : 'A') + value.at(-1);
      assert.equal(await readForeign(flipped, url, SECRET), null);
      const rotated = `another-secret-that-is-at-least-32-bytes! ${SECRET}`;
      assert.deepEqual((await readForeign(value, url, rotated)).data, { user: 'ada' }, 'previous secret');
    });

    test('a destroyed or regenerated session is gone for the reader too', async () => {
      const a = await app();
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const old = cookieValue(c);
      await c.post('/regenerate');
      assert.equal(await readForeign(old, url, SECRET), null, 'the old id is dead');
      const current = cookieValue(c);
      assert.deepEqual((await readForeign(current, url, SECRET)).data, { user: 'ada' });
      await c.post('/destroy');
      assert.equal(await readForeign(current, url, SECRET), null, 'destroyed');
    });

    test('an idle-expired session is gone for the reader (expiresAt checked, not only the TTL)', async () => {
      const a = await app({ idleTimeout: 1500 });
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      const value = cookieValue(c);
      assert.deepEqual((await readForeign(value, url, SECRET)).data, { user: 'ada' });
      await sleep(1700);
      assert.equal(await readForeign(value, url, SECRET), null);
    });

    test('another prefix is another table / key space', async () => {
      const a = await app({ prefix: 'shop' });
      const c = new CookieClient(a.url);
      await c.post('/set?k=user&v=%22ada%22');
      assert.deepEqual((await readForeign(cookieValue(c), url, SECRET, 'shop')).data, { user: 'ada' });
      assert.equal(await readForeign(cookieValue(c), url, SECRET, 'clones'), null);
    });
  });
}

foreignReaderSuite('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-foreign-'));
  return {
    url: `sqlite:${join(dir, 'sessions.db')}`,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

foreignReaderSuite('redis', async () => {
  const redis = await startRedis();
  return { url: redis.url, cleanup: () => redis.stop() };
});
