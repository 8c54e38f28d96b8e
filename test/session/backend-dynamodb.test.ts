import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type AttributeValue,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DynamoDbStore } from '../../src/session/stores/dynamodb-store.ts';
import { dynamoUrl, USER_INDEX } from '../../src/session/stores/dynamodb-table.ts';
import type { RuntimeStore } from '../../src/session/stores/runtime-store.ts';
import { storeConformance } from '../conformance/backend-conformance.ts';
import { outageConformance } from '../conformance/outage-conformance.ts';
import { runtime } from '../conformance/runtime.ts';
import { fresh, newKey } from '../conformance/stored-session.ts';
import { type DynaliteServer, fakeAwsCredentials, startDynalite } from '../harness/dynalite-server.ts';

// One dynalite, started once for every suite of this file, with its data on disk so that the outage suite
// (last) can kill it and restart it with its tables and items. Every suite has tables of its own.
let dynalite: DynaliteServer;
before(async () => {
  fakeAwsCredentials();
  dynalite = await startDynalite({ persist: true });
});
after(async () => {
  await dynalite?.stop();
});

let tables = 0;
storeConformance({
  name: 'dynamodb (dynalite)',
  // A table of its own for each suite; the store creates it on first use.
  url: () => dynalite.url(`sessions-${++tables}`),
  store: () => new DynamoDbStore({ url: dynalite.url('sessions'), connectTimeout: 2000, prefix: 'test' }),
  // 32 x 100 took 147 s of dynalite on a quiet machine and over 300 s beside other tests (a CI timeout).
  race: { clients: 12, rounds: 50 },
  byUser: true,
});

/** The backend as the engine runs it: inside a RuntimeStore, which creates the table on first use. */
// DynamoDB keeps no index end, so its bindUser takes two arguments, as these tests call it.
const dynamo = (options: ConstructorParameters<typeof DynamoDbStore>[0]) =>
  runtime(new DynamoDbStore(options)) as RuntimeStore & Pick<DynamoDbStore, 'bindUser'>;

describe('DynamoDbStore', () => {
  let raw: DynamoDBClient;
  before(() => {
    raw = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });
  });
  after(() => {
    raw.destroy();
  });

  it('creates the table on first use; the item carries the native TTL attribute in seconds', async () => {
    const store = dynamo({ url: dynalite.url('made-here'), connectTimeout: 2000, prefix: 'p' });
    const key = newKey();
    const session = fresh({ user: 'ada' });
    await store.create(key, session);
    const table = await raw.send(new DescribeTableCommand({ TableName: 'made-here' }));
    assert.deepEqual(table.Table?.KeySchema, [{ AttributeName: 'k', KeyType: 'HASH' }]);
    const { Item } = await raw.send(
      new GetItemCommand({ TableName: 'made-here', Key: { k: { S: `p#${key}` } } }),
    );
    assert.equal(Item?.ttl?.N, String(Math.ceil(session.expiresAt / 1000)));
    assert.deepEqual(Item?.d?.M, { user: { S: '"ada"' } });
    await store.touch(key, session.expiresAt + 90_000);
    const touched = await raw.send(
      new GetItemCommand({ TableName: 'made-here', Key: { k: { S: `p#${key}` } } }),
    );
    assert.equal(touched.Item?.ttl?.N, String(Math.ceil((session.expiresAt + 90_000) / 1000)));
    await store.close();
  });

  it('create=false: a missing table is a coded error, not a creation', async () => {
    const store = dynamo({
      url: `${dynalite.url('never-made')}&create=false`,
      connectTimeout: 2000,
      prefix: 'p',
    });
    await assert.rejects(store.get(newKey()), { code: 'CLONES_SESSION_STORE_UNAVAILABLE' });
    await assert.rejects(raw.send(new DescribeTableCommand({ TableName: 'never-made' })), {
      name: 'ResourceNotFoundException',
    });
    await store.close();
  });

  it('a patch too big for one expression is applied by a conditional rewrite, merge and CAS intact', async () => {
    const store = dynamo({ url: dynalite.url('big'), connectTimeout: 2000, prefix: 'p' });
    const key = newKey();
    await store.create(key, fresh({ keep: 1, drop: 2 }));
    const set: Record<string, number> = {};
    for (let i = 0; i < 300; i++) set[`k${i}`] = i;
    assert.deepEqual(await store.patch(key, { set, del: ['drop'] }), { ok: true, version: 2 });
    const got = await store.get(key);
    assert.deepEqual(got?.data, { keep: 1, ...set });
    const stale = await store.patch(key, { set, del: [] }, { ifVersion: 1 });
    assert.equal(stale.ok, false);
    assert.equal(!stale.ok && stale.reason, 'conflict');
    await store.destroy(key, Date.now() + 60_000);
    assert.deepEqual(await store.patch(key, { set, del: [] }), { ok: false, reason: 'gone' });
    await store.close();
  });

  it('URLs: table, region, endpoint, create; clear errors', () => {
    assert.deepEqual(dynamoUrl('dynamodb://sessions?region=eu-west-1'), {
      table: 'sessions',
      region: 'eu-west-1',
      endpoint: undefined,
      create: true,
    });
    assert.equal(dynamoUrl('dynamodb://s.x_y-z?region=r&create=false').create, false);
    for (const bad of [
      'dynamodb://?region=r',
      'dynamodb://ab?region=r',
      'dynamodb://t!t?region=r',
      'dynamodb://sessions?region=r&ttl=1',
      'dynamodb://sessions?region=r&endpoint=ftp://x',
      'dynamodb://sessions?region=r&create=maybe',
    ]) {
      assert.throws(() => dynamoUrl(bad), { code: 'CLONES_SESSION_STORE_URL' }, bad);
    }
  });

  // The same dynalite: every test has its own table.
  describe('sessions by user', () => {
    it('the table it creates carries the sparse KEYS_ONLY index uid-index; bindUser sets uid on the item', async () => {
      const store = dynamo({ url: dynalite.url('with-index'), connectTimeout: 2000, prefix: 'p' });
      const key = newKey();
      await store.create(key, fresh({ n: 1 }));
      assert.equal(await store.bindUser(key, 'ada'), true);
      const table = await raw.send(new DescribeTableCommand({ TableName: 'with-index' }));
      const index = table.Table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === USER_INDEX);
      assert.deepEqual(index?.KeySchema, [{ AttributeName: 'uid', KeyType: 'HASH' }]);
      assert.equal(index?.Projection?.ProjectionType, 'KEYS_ONLY');
      const { Item } = await raw.send(
        new GetItemCommand({ TableName: 'with-index', Key: { k: { S: `p#${key}` } } }),
      );
      assert.equal(Item?.uid?.S, 'ada');
      assert.equal(Item?.v?.N, '1', 'binding is not a data write: the version stays');
      await store.destroy(key, Date.now() + 60_000);
      const after = await raw.send(
        new GetItemCommand({ TableName: 'with-index', Key: { k: { S: `p#${key}` } } }),
      );
      assert.equal(after.Item?.uid, undefined, 'a tombstone leaves the index');
      await store.close();
    });

    it('a table without the index: by-user calls fail with CLONES_SESSION_USER_INDEX_MISSING, the rest works', async () => {
      await raw.send(
        new CreateTableCommand({
          TableName: 'no-index',
          AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      const store = dynamo({ url: dynalite.url('no-index'), connectTimeout: 2000, prefix: 'p' });
      const key = newKey();
      assert.deepEqual(await store.create(key, fresh({ n: 1 })), { ok: true, version: 1 });
      const missing = { code: 'CLONES_SESSION_USER_INDEX_MISSING', status: 503 };
      await assert.rejects(store.bindUser(key, 'ada'), missing);
      await assert.rejects(store.listByUser('ada'), missing);
      await assert.rejects(store.destroyByUser('ada', undefined, Date.now() + 60_000), missing);
      assert.deepEqual((await store.get(key))?.data, { n: 1 });
      await store.close();
    });

    it('listByUser confirms every index candidate: expired, tombstoned, rebound or foreign-prefix items are left out', async () => {
      const store = dynamo({ url: dynalite.url('candidates'), connectTimeout: 2000, prefix: 'p' });
      const live = newKey();
      await store.create(live, fresh({ n: 1 }));
      await store.bindUser(live, 'eve');
      const now = Date.now();
      // Items an eventually consistent index may still hand out, written as such by hand.
      const items: Record<string, AttributeValue>[] = [
        { k: { S: `p#${newKey()}` }, v: { N: '1' }, c: { N: String(now) }, e: { N: String(now - 1) } },
        { k: { S: `p#${newKey()}` }, t: { N: String(now + 60_000) } },
        {
          k: { S: `other#${newKey()}` },
          v: { N: '1' },
          c: { N: String(now) },
          e: { N: String(now + 60_000) },
        },
      ];
      for (const item of items) {
        await raw.send(new PutItemCommand({ TableName: 'candidates', Item: { ...item, uid: { S: 'eve' } } }));
      }
      assert.deepEqual(
        (await store.listByUser('eve')).map((s) => s.key),
        [live],
      );
      assert.equal(await store.destroyByUser('eve', undefined, Date.now() + 60_000), 1);
      assert.deepEqual(await store.listByUser('eve'), []);
      await assert.rejects(store.bindUser(live, ''), { code: 'CLONES_INVALID_OPTION' });
      await store.close();
    });
  });
});

// dynalite, with its data on disk, is killed under load and restarted.
outageConformance({
  name: 'dynamodb (dynalite)',
  start: async () => ({
    url: dynalite.url('outage'),
    down: () => dynalite.kill(),
    up: () => dynalite.restart(),
  }),
});
