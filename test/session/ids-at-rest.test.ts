import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { storeKey } from '../../src/session/session-id.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { startRedis } from '../harness/redis-server.ts';
import { startSessionApp } from '../harness/session-app.ts';

// A dump of the store must not yield a live session: only the SHA-256 of each id is stored.
async function makeSessions(url: string, n: number): Promise<string[]> {
  const app = await startSessionApp({ store: url });
  try {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = new CookieClient(app.url);
      await c.post('/set?k=user&v=%22someone%22');
      ids.push((await c.get('/get')).body.id);
    }
    return ids;
  } finally {
    await app.close();
  }
}

test('sqlite: the database file holds hashes of ids, never an id', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-ids-'));
  try {
    const ids = await makeSessions(`sqlite:${join(dir, 's.db')}`, 5);
    const dump = (await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f))))).map((b) =>
      b.toString('latin1'),
    );
    const all = dump.join('\n');
    for (const id of ids) {
      assert.ok(!all.includes(id), 'raw id found in the database file');
      assert.ok(all.includes(storeKey(id)), 'the hashed key is there');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('redis: keys and values hold hashes of ids, never an id', async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url);
  try {
    const ids = await makeSessions(redis.url, 5);
    const keys = await client.keys('*');
    const values = await Promise.all(keys.map((k) => client.hgetall(k).catch(() => ({}))));
    const all = JSON.stringify([keys, values]);
    for (const id of ids) {
      assert.ok(!all.includes(id), 'raw id found in Redis');
      assert.ok(all.includes(storeKey(id)));
    }
  } finally {
    client.disconnect();
    await redis.stop();
  }
});
