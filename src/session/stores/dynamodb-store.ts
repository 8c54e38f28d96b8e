import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { invalidOption, storeUnavailable, userIndexMissing } from '../../errors.ts';
import { CONFLICT, GONE } from './apply-patch.ts';
import { destroyListed } from './destroy-listed.ts';
import {
  describe,
  dynamoUrl,
  encodeData,
  ensureTable,
  type Item,
  indexedKeys,
  KEY,
  live,
  num,
  readMany,
  TTL_ATTRIBUTE,
  ttlSeconds,
  USER_ATTRIBUTE,
  USER_INDEX,
  type UserIndexState,
  userIndexState,
} from './dynamodb-table.ts';
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

/** How long a store that found no usable user index waits before asking DescribeTable again. */
const INDEX_RECHECK_MS = 5_000;
/** Destroys `destroyByUser` keeps in flight at once. */
const DESTROY_CONCURRENCY = 16;
/** A patch with more keys than this is written as a conditional rewrite: DynamoDB caps an expression at 4 KB. */
const MAX_EXPRESSION_KEYS = 100;
const MAX_REWRITE_ATTEMPTS = 100;

type WriteOutput = { Attributes?: Item } | { refused: Item | undefined };

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
    const candidates = await indexedKeys(this.#db, this.table, this.#prefix, userId, (why) => {
      this.#userIndex = { ok: false, why, checkedAt: Date.now() };
    });
    const now = Date.now();
    const found: UserSession[] = [];
    for (const item of await readMany(this.#db, this.table, candidates)) {
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

/** DynamoDB refuses an empty string, and more than 2,048 bytes, as an index key. */
function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || userId === '' || Buffer.byteLength(userId) > 2048) {
    throw invalidOption('userId', 'the DynamoDB session store needs a user id of 1 to 2,048 bytes');
  }
}
