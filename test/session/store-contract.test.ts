import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/session/stores/memory-store.ts';
import { RedisStore } from '../../src/session/stores/redis-store.ts';
import { SqliteStore } from '../../src/session/stores/sqlite-store.ts';
import { storeContract } from '../conformance/store-contract.ts';
import { startRedis } from '../harness/redis-server.ts';

storeContract('memory', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

storeContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clones-sqlite-'));
  const store = new SqliteStore({
    url: `sqlite:${join(dir, 'sessions.db')}`,
    connectTimeout: 2000,
    prefix: 'test',
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

storeContract('redis', async () => {
  const redis = await startRedis();
  const store = new RedisStore({ url: redis.url, connectTimeout: 2000, prefix: 'test' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await redis.stop();
    },
  };
});
