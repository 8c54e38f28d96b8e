import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandOutput,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { badStoreUrl, storeUnavailable, userIndexMissing } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { setOwn } from './apply-patch.ts';
import type { SessionData, StoredSession } from './store.ts';

// The table behind the DynamoDB session store: its URL, its creation and checks (hash key, TTL, the user
// index), and the batch reads of the by-user answers. The store (dynamodb-store.ts) keeps the session logic.

export const KEY = 'k';
export const TTL_ATTRIBUTE = 'ttl';
export const USER_ATTRIBUTE = 'uid';
/** The sparse global secondary index on `uid` (KEYS_ONLY is enough: every candidate is read back). */
export const USER_INDEX = 'uid-index';
/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_MAX = 100;
const BATCH_GET_ATTEMPTS = 8;
const TABLE_ACTIVE_WAIT_MS = 120_000;

const log = logger.child({ part: 'session', store: 'dynamodb' });

export type Item = Record<string, AttributeValue>;
export type UserIndexState = { ok: true } | { ok: false; why: string; checkedAt: number };
export interface DynamoUrl {
  table: string;
  region: string | undefined;
  endpoint: string | undefined;
  create: boolean;
}

/** Checks the table once per store; creates it (on-demand, TTL on `ttl`) when missing and allowed. */
export async function ensureTable(db: DynamoDBClient, table: string, create: boolean): Promise<void> {
  let described: Awaited<ReturnType<typeof describe>>;
  try {
    described = await describe(db, table);
  } catch (err) {
    if ((err as Error).name !== 'ResourceNotFoundException') throw err;
    if (!create) {
      throw storeUnavailable('dynamodb', new Error(`table ${table} does not exist (create=false)`));
    }
    try {
      await db.send(
        new CreateTableCommand({
          TableName: table,
          AttributeDefinitions: [
            { AttributeName: KEY, AttributeType: 'S' },
            { AttributeName: USER_ATTRIBUTE, AttributeType: 'S' },
          ],
          KeySchema: [{ AttributeName: KEY, KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
          // Sparse: only bound sessions carry `uid`, so the index costs nothing until bindUser is used.
          GlobalSecondaryIndexes: [
            {
              IndexName: USER_INDEX,
              KeySchema: [{ AttributeName: USER_ATTRIBUTE, KeyType: 'HASH' }],
              Projection: { ProjectionType: 'KEYS_ONLY' },
            },
          ],
        }),
      );
      log.info({ table }, 'created the DynamoDB session table');
    } catch (createErr) {
      // Another clone created it first: wait for it like for our own.
      if ((createErr as Error).name !== 'ResourceInUseException') throw createErr;
    }
    described = await waitActive(db, table);
    await enableTtl(db, table);
  }
  const keys = described?.KeySchema ?? [];
  if (keys.length !== 1 || keys[0]?.AttributeName !== KEY || keys[0]?.KeyType !== 'HASH') {
    throw storeUnavailable(
      'dynamodb',
      new Error(`table ${table} must have the single hash key "${KEY}" (string); it has another key schema`),
    );
  }
  if (described?.TableStatus !== 'ACTIVE' && described?.TableStatus !== 'UPDATING')
    await waitActive(db, table);
}

/** Whether the table's user index exists with the right key and can be queried (ACTIVE, not backfilling). */
export function userIndexState(described: TableDescription | undefined): UserIndexState {
  const checkedAt = Date.now();
  const index = described?.GlobalSecondaryIndexes?.find((i) => i.IndexName === USER_INDEX);
  if (!index) return { ok: false, why: `has no global secondary index "${USER_INDEX}"`, checkedAt };
  const keys = index.KeySchema ?? [];
  if (keys.length !== 1 || keys[0]?.AttributeName !== USER_ATTRIBUTE || keys[0]?.KeyType !== 'HASH') {
    return { ok: false, why: `has an index "${USER_INDEX}" whose key is not the hash key "uid"`, checkedAt };
  }
  if (index.Backfilling || (index.IndexStatus !== undefined && index.IndexStatus !== 'ACTIVE')) {
    const status = index.Backfilling ? 'backfilling' : index.IndexStatus;
    return {
      ok: false,
      why: `is still building index "${USER_INDEX}" (${status}); it works once ACTIVE`,
      checkedAt,
    };
  }
  return { ok: true };
}

export async function describe(db: DynamoDBClient, table: string) {
  return (await db.send(new DescribeTableCommand({ TableName: table }))).Table;
}

async function waitActive(db: DynamoDBClient, table: string) {
  const deadline = Date.now() + TABLE_ACTIVE_WAIT_MS;
  for (;;) {
    const described = await describe(db, table);
    if (described?.TableStatus === 'ACTIVE') return described;
    if (Date.now() > deadline)
      throw new Error(`table ${table} is not ACTIVE after ${TABLE_ACTIVE_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function enableTtl(db: DynamoDBClient, table: string): Promise<void> {
  try {
    await db.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (err) {
    // dynalite and some emulators lack the call; expiry is still enforced on read, only the clean-up is lost.
    log.warn({ table, err: (err as Error).message }, 'could not enable DynamoDB TTL on the session table');
  }
}

/**
 * The table keys of `prefix`'s items the user index holds for `userId`, every page of the query. An index
 * deleted or rebuilt since it was checked is CLONES_SESSION_USER_INDEX_MISSING, after `onMissing(why)`.
 *
 * @example
 *   const keys = await indexedKeys(db, 'sessions', 'clones', 'ada', () => {});
 */
export async function indexedKeys(
  db: DynamoDBClient,
  table: string,
  prefix: string,
  userId: string,
  onMissing: (why: string) => void,
): Promise<string[]> {
  const keys: string[] = [];
  const mine = `${prefix}#`;
  let start: Item | undefined;
  do {
    let page: QueryCommandOutput;
    try {
      page = await db.send(
        new QueryCommand({
          TableName: table,
          IndexName: USER_INDEX,
          KeyConditionExpression: '#u = :u',
          ExpressionAttributeNames: { '#u': USER_ATTRIBUTE, '#k': KEY },
          ExpressionAttributeValues: { ':u': { S: userId } },
          ProjectionExpression: '#k',
          ExclusiveStartKey: start,
        }),
      );
    } catch (err) {
      // The index was deleted, or is being rebuilt, since the store last looked.
      if ((err as Error).name === 'ValidationException' && /index/i.test((err as Error).message)) {
        onMissing((err as Error).message);
        throw userIndexMissing(table, USER_INDEX, `refused a query: ${(err as Error).message}`);
      }
      throw err;
    }
    for (const item of page.Items ?? []) {
      const k = item[KEY]?.S;
      // Several prefixes may share a table (and one user id): keep this store's items only.
      if (k?.startsWith(mine)) keys.push(k);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return keys;
}

/** Consistent reads of the attributes a by-user answer needs, 100 keys per BatchGetItem. */
export async function readMany(db: DynamoDBClient, table: string, keys: string[]): Promise<Item[]> {
  const items: Item[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
    let pending: Item[] | undefined = keys.slice(i, i + BATCH_GET_MAX).map((k) => ({ [KEY]: { S: k } }));
    for (let attempt = 1; pending && pending.length > 0; attempt++) {
      if (attempt > BATCH_GET_ATTEMPTS) {
        throw storeUnavailable(
          'dynamodb',
          new Error(`BatchGetItem left keys unprocessed ${attempt - 1} times`),
        );
      }
      // DynamoDB hands back what it could not read under throttling: retry those, with a short backoff.
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
      const out: BatchGetItemCommandOutput = await db.send(
        new BatchGetItemCommand({
          RequestItems: {
            [table]: {
              Keys: pending,
              ConsistentRead: true,
              ProjectionExpression: '#k, #v, #c, #e, #t, #u',
              ExpressionAttributeNames: {
                '#k': KEY,
                '#v': 'v',
                '#c': 'c',
                '#e': 'e',
                '#t': 't',
                '#u': USER_ATTRIBUTE,
              },
            },
          },
        }),
      );
      items.push(...(out.Responses?.[table] ?? []));
      pending = out.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return items;
}

/**
 * Table, region, endpoint and the create flag of a `dynamodb://<table>?...` URL, validated once. The region
 * defaults to AWS_REGION / AWS_DEFAULT_REGION, as in the AWS CLI.
 *
 * @example
 *   dynamoUrl('dynamodb://sessions?region=eu-west-1&create=false');
 */
export function dynamoUrl(url: string): DynamoUrl {
  const match = /^dynamodb:\/\/([^/?#]*)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw badStoreUrl(url, 'expected dynamodb://<table>?region=<region>[&endpoint=<url>]');
  const table = decodeURIComponent(match[1] as string);
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(table)) {
    throw badStoreUrl(url, `"${table}" is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)`);
  }
  const params = new URLSearchParams(match[2] ?? '');
  for (const name of params.keys()) {
    if (!['region', 'endpoint', 'create'].includes(name)) {
      throw badStoreUrl(url, `unknown parameter "${name}"; known: region, endpoint, create`);
    }
  }
  const region = params.get('region') || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION;
  if (!region) throw badStoreUrl(url, 'no region: add ?region=<region> or set AWS_REGION');
  const endpoint = params.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw badStoreUrl(url, `endpoint "${endpoint}" is not an http(s) URL`);
  }
  const create = params.get('create') ?? 'true';
  if (!['true', 'false', '1', '0'].includes(create)) throw badStoreUrl(url, 'create must be true or false');
  return { table, region, endpoint, create: create === 'true' || create === '1' };
}

/** The session in an item, or null when there is none, it is a tombstone, or it is past its expiry. */
export function live(item: Item | undefined, now: number): StoredSession | null {
  if (!item || item.v?.N === undefined || item.t !== undefined) return null;
  const expiresAt = Number(item.e?.N);
  if (!(expiresAt > now)) return null;
  const data: SessionData = {};
  for (const [name, value] of Object.entries(item.d?.M ?? {})) {
    if (value.S !== undefined) setOwn(data, name, JSON.parse(value.S));
  }
  const session: StoredSession = { data, version: Number(item.v.N), createdAt: Number(item.c?.N), expiresAt };
  if (item[USER_ATTRIBUTE]?.S !== undefined) session.userId = item[USER_ATTRIBUTE].S;
  return session;
}

export function encodeData(data: SessionData): Item {
  const out: Item = {};
  for (const name of Object.keys(data)) {
    const json = JSON.stringify(data[name]);
    if (json !== undefined) out[name] = { S: json };
  }
  return out;
}

export const num = (n: number): AttributeValue => ({ N: String(n) });
export const ttlSeconds = (ms: number): number => Math.ceil(ms / 1000);
