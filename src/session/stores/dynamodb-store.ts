import {
  type AttributeValue,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { badStoreUrl, storeUnavailable } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { CONFLICT, GONE, setOwn } from './apply-patch.ts';
import type {
  PatchOptions,
  SessionData,
  SessionPatch,
  SessionStore,
  StoredSession,
  StoreOpenOptions,
  WriteResult,
} from './store.ts';

// Layout (docs/session-format.md): one item per session, hash key `k` = "<prefix>#<key>". A live session has
// v (version), c (createdAt ms), e (expiresAt ms), ttl (expiresAt in epoch seconds: DynamoDB's native TTL
// attribute, which deletes expired items within a day or two), and d: a map of top-level session key -> the
// value's JSON text (a string, so every JSON value round-trips byte for byte, numbers included). A destroyed
// session is the same item replaced by {k, t: tombstoneUntil, ttl}: every conditional write against the
// session (they all require `v`) fails from then on. A patch is one UpdateItem that sets/removes only its
// keys in d and adds one to v, conditioned on the session being alive (and on v for ifVersion).

const KEY = 'k';
const TTL_ATTRIBUTE = 'ttl';
/** A patch with more keys than this is written as a conditional rewrite: DynamoDB caps an expression at 4 KB. */
const MAX_EXPRESSION_KEYS = 100;
const MAX_REWRITE_ATTEMPTS = 100;
const TABLE_ACTIVE_WAIT_MS = 120_000;

const log = logger.child({ part: 'session', store: 'dynamodb' });

type Item = Record<string, AttributeValue>;
type WriteOutput = { Attributes?: Item } | { refused: Item | undefined };
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
 * on-demand billing, TTL on `ttl`) is created on first use when missing, unless `create=false`.
 *
 * @example
 *   const store = new DynamoDbStore({ url: 'dynamodb://sessions?region=eu-west-1', connectTimeout: 2000,
 *     prefix: 'clones' });
 */
export class DynamoDbStore implements SessionStore {
  readonly kind = 'dynamodb';
  readonly table: string;
  readonly #db: DynamoDBClient;
  readonly #prefix: string;
  readonly #create: boolean;
  #ready: Promise<void> | undefined;
  #closed = false;

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
    await this.#tableReady();
    const { Item: item } = await this.#db.send(
      new GetItemCommand({ TableName: this.table, Key: this.#key(key), ConsistentRead: true }),
    );
    return live(item, Date.now());
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    await this.#tableReady();
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
    await this.#tableReady();
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
    await this.#tableReady();
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
    await this.#tableReady();
    if (tombstoneUntil <= Date.now()) {
      await this.#db.send(new DeleteItemCommand({ TableName: this.table, Key: this.#key(key) }));
      return;
    }
    const tombstone: Item = {
      ...this.#key(key),
      t: num(tombstoneUntil),
      [TTL_ATTRIBUTE]: num(ttlSeconds(tombstoneUntil)),
    };
    await this.#db.send(new PutItemCommand({ TableName: this.table, Item: tombstone }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.destroy();
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
  async #conditional(command: PutItemCommand | UpdateItemCommand): Promise<WriteOutput> {
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

  #tableReady(): Promise<void> {
    if (this.#closed) return Promise.reject(storeUnavailable(this.kind, new Error('the store was closed')));
    this.#ready ??= ensureTable(this.#db, this.table, this.#create).catch((err) => {
      this.#ready = undefined; // tried again on the next call (the table may be created meanwhile)
      throw err;
    });
    return this.#ready;
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
          AttributeDefinitions: [{ AttributeName: KEY, AttributeType: 'S' }],
          KeySchema: [{ AttributeName: KEY, KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
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
  return { data, version: Number(item.v.N), createdAt: Number(item.c?.N), expiresAt };
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
