import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
  type TableDescription,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { badStoreUrl, invalidOption, storeUnavailable, userIndexMissing } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { CONFLICT, GONE, setOwn } from './apply-patch.ts';
import { destroyListed } from './destroy-listed.ts';
import type {
  PatchOptions,
  SessionData,
  SessionPatch,
  StoreBackend,
  StoredSession,
  StoreOpenOptions,
  UserSession,
  WriteResult,
} from './store.ts';

// Layout (docs/session-format.md): one item per session, hash key `k` = "<prefix>#<key>". A live session has
// v (version), c (createdAt ms), e (expiresAt ms), ttl (expiresAt in epoch seconds: DynamoDB's native TTL
// attribute, which deletes expired items within a day or two), and d: a map of top-level session key -> the
// value's JSON text (a string, so every JSON value round-trips byte for byte, numbers included). A destroyed
// session is the same item replaced by {k, t: tombstoneUntil, ttl}: every conditional write against the
// session (they all require `v`) fails from then on. A patch is one UpdateItem that sets/removes only its
// keys in d and adds one to v, conditioned on the session being alive (and on v for ifVersion).
// Sessions by user: `bindUser` sets `uid` (the user id, S) on the live session item, in one conditional write,
// so the binding cannot outlive the session or land on a tombstone (which is a new item without `uid`). The
// sparse global secondary index `uid-index` (hash key `uid`) finds a user's items. A GSI is eventually
// consistent, so `listByUser` takes its keys as candidates only and confirms each one with a consistent read
// (live, not a tombstone, still bound to this user) before answering.

const KEY = 'k';
const TTL_ATTRIBUTE = 'ttl';
const USER_ATTRIBUTE = 'uid';
/** The sparse global secondary index on `uid` (KEYS_ONLY is enough: every candidate is read back). */
export const USER_INDEX = 'uid-index';
/** How long a store that found no usable user index waits before asking DescribeTable again. */
const INDEX_RECHECK_MS = 5_000;
/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_MAX = 100;
const BATCH_GET_ATTEMPTS = 8;
/** Destroys `destroyByUser` keeps in flight at once. */
const DESTROY_CONCURRENCY = 16;
/** A patch with more keys than this is written as a conditional rewrite: DynamoDB caps an expression at 4 KB. */
const MAX_EXPRESSION_KEYS = 100;
const MAX_REWRITE_ATTEMPTS = 100;
const TABLE_ACTIVE_WAIT_MS = 120_000;

const log = logger.child({ part: 'session', store: 'dynamodb' });

type Item = Record<string, AttributeValue>;
type WriteOutput = { Attributes?: Item } | { refused: Item | undefined };
type UserIndexState = { ok: true } | { ok: false; why: string; checkedAt: number };
interface DynamoUrl {
  table: string;
  region: string | undefined;
  endpoint: string | undefined;
  create: boolean;
}

/**
 * Sessions in a DynamoDB table (`dynamodb://<table>?region=eu-west-1[&endpoint=http://...][&create=false]`),
 * through the AWS SDK v3 and its default credential chain. Every write is one conditional request; expiry uses
 * DynamoDB's native TTL attribute and is also checked on read (TTL deletion lags). The table (hash key `k`,
 * on-demand billing, TTL on `ttl`, global secondary index `uid-index` on `uid` for sessions by user) is created
 * on first use when missing, unless `create=false`.
 *
 * @example
 *   const store = new DynamoDbStore({ url: 'dynamodb://sessions?region=eu-west-1', connectTimeout: 2000,
 *     prefix: 'clones' });
 */
export class DynamoDbStore implements StoreBackend {
  readonly kind = 'dynamodb';
  readonly table: string;
  readonly #db: DynamoDBClient;
  readonly #prefix: string;
  readonly #create: boolean;
  #userIndex: UserIndexState | undefined;

  constructor(options: StoreOpenOptions) {
    const parsed = dynamoUrl(options.url);
    this.table = parsed.table;
    this.#create = parsed.create;
    this.#prefix = options.prefix;
    this.#db = new DynamoDBClient({
      region: parsed.region,
      endpoint: parsed.endpoint,
      requestHandler: {
        connectionTimeout: options.connectTimeout,
        requestTimeout: Math.max(options.connectTimeout, 1000),
      },
    });
  }

  async get(key: string): Promise<StoredSession | null> {
    const { Item: item } = await this.#db.send(
      new GetItemCommand({ TableName: this.table, Key: this.#key(key), ConsistentRead: true }),
    );
    return live(item, Date.now());
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    const item: Item = {
      ...this.#key(key),
      v: num(session.version),
      c: num(session.createdAt),
      e: num(session.expiresAt),
      [TTL_ATTRIBUTE]: num(ttlSeconds(session.expiresAt)),
      d: { M: encodeData(session.data) },
    };
    const now = Date.now();
    const written = await this.#conditional(
      new PutItemCommand({
        TableName: this.table,
        Item: item,
        // Free: no item, a tombstone that has ended, or a session past its ms expiry that TTL has not removed.
        ConditionExpression:
          'attribute_not_exists(#k) OR (attribute_exists(#t) AND #t <= :now) OR (attribute_not_exists(#t) AND #e <= :now)',
        ExpressionAttributeNames: { '#k': KEY, '#t': 't', '#e': 'e' },
        ExpressionAttributeValues: { ':now': num(now) },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    if (!('refused' in written)) return { ok: true, version: session.version };
    const current = written.refused ?? (await this.#read(key));
    return current && typeof current.t?.N === 'string' && Number(current.t.N) > now ? GONE : CONFLICT;
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    const set = encodeData(JSON.parse(JSON.stringify(patch.set)) as SessionData);
    // A key both deleted and set ends set (applyPatch order); a key set to undefined disappears, as in JSON.
    const del = [...patch.del, ...Object.keys(patch.set).filter((k) => !Object.hasOwn(set, k))].filter(
      (k) => !Object.hasOwn(set, k),
    );
    const names = Object.keys(set).length + del.length;
    if (names > MAX_EXPRESSION_KEYS) return this.#patchByRewrite(key, set, [...new Set(del)], options);

    const attrNames: Record<string, string> = { '#v': 'v', '#e': 'e' };
    if (names > 0) attrNames['#d'] = 'd';
    const values: Item = { ':one': num(1), ':now': num(Date.now()) };
    const sets: string[] = ['#v = #v + :one'];
    const removes: string[] = [];
    let i = 0;
    for (const name of Object.keys(set)) {
      attrNames[`#n${i}`] = name;
      values[`:j${i}`] = set[name] as AttributeValue;
      sets.push(`#d.#n${i} = :j${i}`);
      i++;
    }
    for (const name of new Set(del)) {
      attrNames[`#n${i}`] = name;
      removes.push(`#d.#n${i}`);
      i++;
    }
    if (options.expiresAt !== undefined) {
      attrNames['#ttl'] = TTL_ATTRIBUTE;
      values[':e'] = num(options.expiresAt);
      values[':ttl'] = num(ttlSeconds(options.expiresAt));
      sets.push('#e = :e', '#ttl = :ttl');
    }
    let condition = 'attribute_exists(#v) AND #e > :now';
    if (options.ifVersion !== undefined) {
      values[':if'] = num(options.ifVersion);
      condition += ' AND #v = :if';
    }
    const update = `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`;
    const result = await this.#conditional(
      new UpdateItemCommand({
        TableName: this.table,
        Key: this.#key(key),
        UpdateExpression: update,
        ConditionExpression: condition,
        ExpressionAttributeNames: attrNames,
        ExpressionAttributeValues: values,
        ReturnValues: 'UPDATED_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    if (!('refused' in result)) return { ok: true, version: Number(result.Attributes?.v?.N) };
    return this.#whyRefused(key, options.ifVersion, result.refused);
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    // TTL-only: two attributes, never the data.
    const result = await this.#conditional(
      new UpdateItemCommand({
        TableName: this.table,
        Key: this.#key(key),
        UpdateExpression: 'SET #e = :e, #ttl = :ttl',
        ConditionExpression: 'attribute_exists(#v) AND #e > :now',
        ExpressionAttributeNames: { '#v': 'v', '#e': 'e', '#ttl': TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ':e': num(expiresAt),
          ':ttl': num(ttlSeconds(expiresAt)),
          ':now': num(Date.now()),
        },
      }),
    );
    return !('refused' in result);
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    // biome-ignore lint/suspicious/noExplicitAny: either command type goes through the same send
    await this.#db.send(this.#tombstone(key, tombstoneUntil) as any);
  }

  async bindUser(key: string, userId: string): Promise<boolean> {
    checkUserId(userId);
    await this.#userIndexReady();
    // The same liveness condition as a patch: a tombstone (no `v`) or an expired session is never bound.
    const result = await this.#conditional(
      new UpdateItemCommand({
        TableName: this.table,
        Key: this.#key(key),
        UpdateExpression: 'SET #u = :u',
        ConditionExpression: 'attribute_exists(#v) AND #e > :now',
        ExpressionAttributeNames: { '#u': USER_ATTRIBUTE, '#v': 'v', '#e': 'e' },
        ExpressionAttributeValues: { ':u': { S: userId }, ':now': num(Date.now()) },
      }),
    );
    return !('refused' in result);
  }

  async listByUser(userId: string): Promise<UserSession[]> {
    checkUserId(userId);
    await this.#userIndexReady();
    const candidates = await this.#indexedKeys(userId);
    const now = Date.now();
    const found: UserSession[] = [];
    for (const item of await this.#readMany(candidates)) {
      if (item.v?.N === undefined || item.t !== undefined || item[USER_ATTRIBUTE]?.S !== userId) continue;
      const expiresAt = Number(item.e?.N);
      if (!(expiresAt > now)) continue;
      const key = (item[KEY]?.S ?? '').slice(this.#prefix.length + 1);
      found.push({ key, createdAt: Number(item.c?.N), expiresAt });
    }
    return found;
  }

  async destroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    const listed = await this.listByUser(userId);
    const destroy = (s: UserSession) => this.#destroyBound(s.key, userId, tombstoneUntil);
    return (await destroyListed(listed, exceptKey, destroy, DESTROY_CONCURRENCY)).length;
  }

  /** Checks the table, and creates it when missing and allowed (run once by the RuntimeStore). */
  init(): Promise<void> {
    return ensureTable(this.#db, this.table, this.#create);
  }

  async close(): Promise<void> {
    this.#db.destroy();
  }

  /**
   * Destroys one session only while it is still a live item bound to `userId` (exactly what `destroy` leaves
   * otherwise), so two concurrent "log out everywhere" calls do not both count it.
   */
  async #destroyBound(key: string, userId: string, tombstoneUntil: number): Promise<boolean> {
    const command = this.#tombstone(key, tombstoneUntil, {
      ConditionExpression: 'attribute_exists(#v) AND #u = :u',
      ExpressionAttributeNames: { '#v': 'v', '#u': USER_ATTRIBUTE },
      ExpressionAttributeValues: { ':u': { S: userId } },
    });
    return !('refused' in (await this.#conditional(command)));
  }

  /**
   * What ends a session: a tombstone item `{k, t, ttl}` that stays until `tombstoneUntil` (so no in-flight
   * conditional write can revive it), or a plain delete when that moment has passed; `condition` guards either.
   */
  #tombstone(
    key: string,
    tombstoneUntil: number,
    condition: {
      ConditionExpression?: string;
      ExpressionAttributeNames?: Record<string, string>;
      ExpressionAttributeValues?: Item;
    } = {},
  ): PutItemCommand | DeleteItemCommand {
    if (tombstoneUntil <= Date.now()) {
      return new DeleteItemCommand({ TableName: this.table, Key: this.#key(key), ...condition });
    }
    const item: Item = {
      ...this.#key(key),
      t: num(tombstoneUntil),
      [TTL_ATTRIBUTE]: num(ttlSeconds(tombstoneUntil)),
    };
    return new PutItemCommand({ TableName: this.table, Item: item, ...condition });
  }

  /** The table keys of this prefix's items the user index holds for `userId`, every page of the query. */
  async #indexedKeys(userId: string): Promise<string[]> {
    const keys: string[] = [];
    const mine = `${this.#prefix}#`;
    let start: Item | undefined;
    do {
      let page: QueryCommandOutput;
      try {
        page = await this.#db.send(
          new QueryCommand({
            TableName: this.table,
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
          this.#userIndex = { ok: false, why: (err as Error).message, checkedAt: Date.now() };
          throw userIndexMissing(this.table, USER_INDEX, `refused a query: ${(err as Error).message}`);
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
  async #readMany(keys: string[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
      let pending: Item[] | undefined = keys.slice(i, i + BATCH_GET_MAX).map((k) => ({ [KEY]: { S: k } }));
      for (let attempt = 1; pending && pending.length > 0; attempt++) {
        if (attempt > BATCH_GET_ATTEMPTS) {
          throw storeUnavailable(
            this.kind,
            new Error(`BatchGetItem left keys unprocessed ${attempt - 1} times`),
          );
        }
        // DynamoDB hands back what it could not read under throttling: retry those, with a short backoff.
        if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
        const out: BatchGetItemCommandOutput = await this.#db.send(
          new BatchGetItemCommand({
            RequestItems: {
              [this.table]: {
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
        items.push(...(out.Responses?.[this.table] ?? []));
        pending = out.UnprocessedKeys?.[this.table]?.Keys;
      }
    }
    return items;
  }

  /**
   * Sessions by user need the index: checked once, and while it is missing or still building, asked again at
   * most every INDEX_RECHECK_MS, so adding it to a live table needs no restart of the clones.
   */
  async #userIndexReady(): Promise<void> {
    const state = this.#userIndex;
    if (state?.ok) return;
    if (!state || Date.now() - state.checkedAt >= INDEX_RECHECK_MS) {
      this.#userIndex = userIndexState(await describe(this.#db, this.table));
    }
    const now = this.#userIndex as UserIndexState;
    if (!now.ok) throw userIndexMissing(this.table, USER_INDEX, now.why);
  }

  /** Big patches: read, merge here, and put back only if the version is still the one read. */
  async #patchByRewrite(key: string, set: Item, del: string[], options: PatchOptions): Promise<WriteResult> {
    for (let attempt = 1; attempt <= MAX_REWRITE_ATTEMPTS; attempt++) {
      const item = await this.#read(key);
      const current = live(item, Date.now());
      if (!current || !item) return GONE;
      if (options.ifVersion !== undefined && options.ifVersion !== current.version) return CONFLICT;
      const d = { ...(item.d?.M ?? {}) };
      for (const name of del) delete d[name];
      for (const name of Object.keys(set)) d[name] = set[name] as AttributeValue;
      const expiresAt = options.expiresAt ?? current.expiresAt;
      const next: Item = {
        ...item,
        v: num(current.version + 1),
        e: num(expiresAt),
        [TTL_ATTRIBUTE]: num(ttlSeconds(expiresAt)),
        d: { M: d },
      };
      const written = await this.#conditional(
        new PutItemCommand({
          TableName: this.table,
          Item: next,
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'v' },
          ExpressionAttributeValues: { ':v': num(current.version) },
        }),
      );
      if (!('refused' in written)) return { ok: true, version: current.version + 1 };
    }
    throw storeUnavailable(this.kind, new Error(`patch kept racing after ${MAX_REWRITE_ATTEMPTS} attempts`));
  }

  /**
   * After a refused patch: `conflict` (with the session as it is now) only if the session is alive and at
   * another version. DynamoDB returns the item with the refusal (ReturnValuesOnConditionCheckFailure);
   * emulators that do not are asked once more.
   */
  async #whyRefused(
    key: string,
    ifVersion: number | undefined,
    item: Item | undefined,
  ): Promise<WriteResult> {
    const current = live(item ?? (await this.#read(key)), Date.now());
    if (!current) return GONE;
    return ifVersion !== undefined && current.version !== ifVersion
      ? { ok: false, reason: 'conflict', current }
      : GONE;
  }

  async #read(key: string): Promise<Item | undefined> {
    const { Item: item } = await this.#db.send(
      new GetItemCommand({ TableName: this.table, Key: this.#key(key), ConsistentRead: true }),
    );
    return item;
  }

  /**
   * Sends a conditional write; answers its output, or `{ refused }` when the condition failed, with the item
   * as it was when DynamoDB returned it.
   */
  async #conditional(command: PutItemCommand | UpdateItemCommand | DeleteItemCommand): Promise<WriteOutput> {
    try {
      // biome-ignore lint/suspicious/noExplicitAny: both command types share this one path
      return (await this.#db.send(command as any)) as WriteOutput;
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException') {
        return { refused: (err as { Item?: Item }).Item };
      }
      throw err;
    }
  }

  #key(key: string): Item {
    return { [KEY]: { S: `${this.#prefix}#${key}` } };
  }
}

/** Checks the table once per store; creates it (on-demand, TTL on `ttl`) when missing and allowed. */
async function ensureTable(db: DynamoDBClient, table: string, create: boolean): Promise<void> {
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
function userIndexState(described: TableDescription | undefined): UserIndexState {
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

/** DynamoDB refuses an empty string, and more than 2,048 bytes, as an index key. */
function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || userId === '' || Buffer.byteLength(userId) > 2048) {
    throw invalidOption('userId', 'the DynamoDB session store needs a user id of 1 to 2,048 bytes');
  }
}

async function describe(db: DynamoDBClient, table: string) {
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

/** The session in an item, or null when there is none, it is a tombstone, or it is past its expiry. */
function live(item: Item | undefined, now: number): StoredSession | null {
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

function encodeData(data: SessionData): Item {
  const out: Item = {};
  for (const name of Object.keys(data)) {
    const json = JSON.stringify(data[name]);
    if (json !== undefined) out[name] = { S: json };
  }
  return out;
}

const num = (n: number): AttributeValue => ({ N: String(n) });
const ttlSeconds = (ms: number): number => Math.ceil(ms / 1000);

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
