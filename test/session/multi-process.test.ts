import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { freePort } from '../harness/free-port.ts';
import { startRedis } from '../harness/redis-server.ts';
import { probeTcp, type ServerProcess, spawnServer } from '../harness/server-process.ts';
import { SECRET } from '../harness/session-app.ts';

const APP = join(import.meta.dirname, '..', 'fixtures', 'express-app.ts');

interface Clone {
  url: string;
  process: ServerProcess;
}

/** Starts one clone of the fixture app on a free port; retries when the port was taken in between. */
async function startClone(store: string): Promise<Clone> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const child = await spawnServer({
        name: 'express-app',
        command: process.execPath,
        args: ['--import', 'tsx', APP],
        env: { ...process.env, PORT: String(port), SESSION_STORE: store, SESSION_SECRET: SECRET },
        ready: () =>
          probeTcp(port, 'GET /up HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', (r) =>
            r.startsWith('HTTP/1.1 200'),
          ),
        readyTimeoutMs: 20_000,
      });
      return { url: `http://127.0.0.1:${port}`, process: child };
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE|address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

const startClones = (store: string) => Promise.all([0, 1, 2].map(() => startClone(store)));

/** One browser whose requests go round-robin over the clones, as behind a balancer: same jar, any clone. */
class Browser {
  readonly client = new CookieClient('');
  #next = 0;
  constructor(public clones: Clone[]) {}
  request(method: string, path: string, cookie?: string) {
    const clone = this.clones[this.#next++ % this.clones.length]!;
    return this.client.request(method, `${clone.url}${path}`, cookie === undefined ? {} : { cookie });
  }
}

function multiProcess(name: string, setup: () => Promise<{ store: string; cleanup(): Promise<void> }>) {
  describe(`${name}: 3 processes share sessions`, () => {
    let store = '';
    let cleanup = async () => {};
    let clones: Clone[] = [];
    before(async () => {
      ({ store, cleanup } = await setup());
      clones = await startClones(store);
    });
    after(async () => {
      await Promise.all(clones.map((c) => c.process.stop()));
      await cleanup();
    });

    test('requests alternate between clones; a restart of all 3 loses no session', async () => {
      const browsers = Array.from({ length: 6 }, () => new Browser(clones));
      for (const [i, b] of browsers.entries()) {
        for (let k = 0; k < 6; k++) {
          const res = await b.request('POST', `/set?k=k${k}&v=${i * 100 + k}`);
          assert.equal(res.status, 200, JSON.stringify(res.body));
        }
      }
      const expected = (i: number) =>
        Object.fromEntries([0, 1, 2, 3, 4, 5].map((k) => [`k${k}`, i * 100 + k]));
      const pids = new Set<number>();
      for (const [i, b] of browsers.entries()) {
        for (let r = 0; r < 3; r++) {
          const res = await b.request('GET', '/get');
          pids.add(res.body.pid);
          assert.deepEqual(res.body.data, expected(i), `browser ${i} on pid ${res.body.pid}`);
        }
      }
      assert.equal(pids.size, 3, 'the reads were served by all 3 processes');
      const cookies = browsers.map((b) => b.client.cookieHeader());

      const stopping = clones.map((c) => c.process.stop());
      await Promise.all(stopping);
      for (const c of clones) assert.equal(await c.process.exited, 0, 'each clone exits cleanly on SIGTERM');
      clones = await startClones(store);

      const after = new Set<number>();
      for (const [i, b] of browsers.entries()) {
        b.clones = clones;
        assert.equal(b.client.cookieHeader(), cookies[i], 'the same cookie');
        for (let r = 0; r < 3; r++) {
          const res = await b.request('GET', '/get');
          after.add(res.body.pid);
          assert.deepEqual(res.body.data, expected(i), `browser ${i} after the restart`);
        }
      }
      assert.equal([...after].filter((pid) => pids.has(pid)).length, 0, 'served by the new processes');
    });

    test('12 concurrent clients x 50 update increments across the 3 processes: exact total', async () => {
      const owner = new Browser(clones);
      await owner.request('POST', '/set?k=seed&v=true');
      const cookie = owner.client.cookieHeader();
      const clients = 12;
      const each = 50;
      const values: number[] = [];
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let i = 0; i < each; i++) {
            const clone = clones[(c + i) % clones.length]!;
            const res = await fetch(`${clone.url}/incr?k=n`, { method: 'POST', headers: { cookie } });
            const body = (await res.json()) as { value: number };
            assert.equal(res.status, 200, JSON.stringify(body));
            values.push(body.value);
          }
        }),
      );
      const final = (await owner.request('GET', '/get')).body.data.n;
      assert.equal(final, clients * each, 'no lost update');
      assert.equal(new Set(values).size, clients * each, 'every increment saw a distinct value');
    });
  });
}

multiProcess('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-mp-'));
  return {
    store: `sqlite:${join(dir, 'sessions.db')}`,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

multiProcess('redis', async () => {
  const redis = await startRedis();
  return { store: redis.url, cleanup: () => redis.stop() };
});
