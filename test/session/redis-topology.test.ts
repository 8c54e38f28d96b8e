import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStore } from '../../src/session/stores/open-store.ts';
import { redisTopology } from '../../src/session/stores/redis-topology.ts';

test('redis+sentinel:// names the sentinels, the master, the db and the passwords', () => {
  assert.deepEqual(redisTopology('redis+sentinel://s1:26380,s2/mymaster'), {
    mode: 'sentinel',
    sentinels: [
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
    ],
    name: 'mymaster',
    db: 0,
  });
  assert.deepEqual(redisTopology('redis+sentinel://app:p%40ss@[::1]:1/m/3?sentinel_password=sp'), {
    mode: 'sentinel',
    sentinels: [{ host: '::1', port: 1 }],
    name: 'm',
    db: 3,
    username: 'app',
    password: 'p@ss',
    sentinelPassword: 'sp',
  });
});

test('redis+cluster:// lists the seed nodes (port 6379 by default) and a password', () => {
  assert.deepEqual(redisTopology('redis+cluster://:pw@a:7000,b:7001,c'), {
    mode: 'cluster',
    nodes: [
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
      { host: 'c', port: 6379 },
    ],
    password: 'pw',
  });
});

test('bad sentinel and cluster URLs get CLONES_SESSION_STORE_URL, without the password', () => {
  for (const url of [
    'redis+sentinel://s1:26379',
    'redis+sentinel://s1:26379/m/notadb',
    'redis+sentinel://s1:26379/m/1/2',
    'redis+sentinel://s1:99999/m',
    'redis+sentinel://s1,s1/m',
    'redis+sentinel://s1/m?tls=1',
    'redis+cluster://a:7000/0',
    'redis+cluster://a:7000?sentinel_password=x',
    'redis+cluster://',
  ]) {
    assert.throws(() => redisTopology(url), { code: 'CLONES_SESSION_STORE_URL' }, url);
  }
  assert.throws(
    () => redisTopology('redis+cluster://:hunter2@a:7000/1'),
    (err: Error) => !err.message.includes('hunter2'),
  );
});

test('openStore knows both schemes and opens without I/O', async () => {
  for (const url of ['redis+sentinel://127.0.0.1:1/m', 'redis+cluster://127.0.0.1:1,127.0.0.1:2']) {
    const store = await openStore(url, { timeoutMs: 500, prefix: 'test' });
    assert.match(store.kind, /^redis (sentinel|cluster)$/);
    await store.close();
  }
});
