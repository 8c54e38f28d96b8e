import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDbStore } from '../../src/session/stores/dynamodb-store.ts';
import { MemcachedStore } from '../../src/session/stores/memcached-store.ts';
import { MemoryStore } from '../../src/session/stores/memory-store.ts';
import { PostgresStore } from '../../src/session/stores/postgres-store.ts';
import { RedisStore } from '../../src/session/stores/redis-store.ts';
import { SqliteStore } from '../../src/session/stores/sqlite-store.ts';
import { storeContract } from '../conformance/store-contract.ts';
import { fakeAwsCredentials, startDynalite } from '../harness/dynalite-server.ts';
import { startMemcached } from '../harness/memcached-server.ts';
import { startPostgres } from '../harness/postgres-server.ts';
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

storeContract('memcached (two servers)', async () => {
  const [a, b] = await Promise.all([startMemcached(), startMemcached()]);
  const store = new MemcachedStore({
    url: `memcached://${a.address},${b.address}`,
    connectTimeout: 2000,
    prefix: 'test',
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Promise.all([a.stop(), b.stop()]);
    },
  };
});

storeContract(
  'dynamodb (dynalite)',
  async () => {
    fakeAwsCredentials();
    const dynalite = await startDynalite();
    const store = new DynamoDbStore({ url: dynalite.url('sessions'), connectTimeout: 2000, prefix: 'test' });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dynalite.stop();
      },
    };
    // 32 x 100 took 147 s of dynalite on a quiet machine and over 300 s beside other tests (a CI timeout).
  },
  { clients: 12, rounds: 50 },
);

storeContract('postgres', async () => {
  const pg = await startPostgres({ replicas: 0 });
  const store = new PostgresStore({ url: pg.primaryUrl, connectTimeout: 2000, prefix: 'test' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await pg.stop();
    },
  };
});
