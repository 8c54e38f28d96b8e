import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { badStoreUrl, storeUnavailable } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { CONFLICT, GONE } from './apply-patch.ts';
import { redisTopology } from './redis-topology.ts';
import type {
  PatchOptions,
  SessionPatch,
  SessionStore,
  StoredSession,
  StoreOpenOptions,
  UserSession,
  WriteResult,
} from './store.ts';

// Layout: a session is the HASH `<prefix>:s:{<key>}` with `v` (version), `c` (createdAt), `e` (expiresAt), one
// `d:<name>` field of JSON per top-level session key, and `j`: the whole data as one JSON object, rebuilt
// from the `d:` fields by every script that changes them. The `d:` fields let a patch merge only the keys it
// changed, atomically on the server; `j` lets a read be one HMGET of four values and one JSON.parse: ioredis
// decodes every field of a reply, and an HGETALL of a 4-key session cost about 2.5 times a GET (11 vs 4.5 us
// of client CPU), while HMGET v c e j costs about 6.7 us. `j` doubles the memory a session takes.
// The hash expires at `e` (PEXPIREAT). A destroyed session leaves `<prefix>:t:{<key>}` until the tombstone
// ends. Both keys share the hash tag `{<key>}`, so the scripts stay valid on Redis Cluster.
// The scripts take `now` from the caller: the store contract compares expiry with the clones' clock.

const LUA_HELPERS = `
-- HSET/HDEL in slices: unpack() of a huge table would overflow Lua's C stack.
local function chunked(cmd, key, args)
  for i = 1, #args, 1000 do redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args))) end
end
-- j from the d: fields. Values are already JSON text and are copied byte for byte; only names are encoded.
local function rebuild(key)
  local all = redis.call('HGETALL', key)
  local parts = {}
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'd:' then parts[#parts + 1] = cjson.encode(string.sub(f, 3)) .. ':' .. all[i + 1] end
  end
  redis.call('HSET', key, 'j', '{' .. table.concat(parts, ',') .. '}')
end
`;

/**
 * ARGV: now, version, createdAt, expiresAt, j (the data as JSON), then name/json pairs.
 * -1 gone, -2 conflict, else the version.
 */
const CREATE = `${LUA_HELPERS}
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) > tonumber(ARGV[1]) then return -2 end
redis.call('DEL', KEYS[1])
local args = { 'v', ARGV[2], 'c', ARGV[3], 'e', ARGV[4], 'j', ARGV[5] }
for i = 6, #ARGV, 2 do
  args[#args + 1] = 'd:' .. ARGV[i]
  args[#args + 1] = ARGV[i + 1]
end
chunked('HSET', KEYS[1], args)
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return tonumber(ARGV[2])
`;

/**
 * ARGV: now, ifVersion or '', expiresAt or '', number of pairs to set, the name/json pairs, then the names to
 * delete. -1 gone, { -2, v, c, e, j } conflict (the session as it is now), else the new version.
 */
const PATCH = `${LUA_HELPERS}
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local h = redis.call('HMGET', KEYS[1], 'v', 'e')
if not h[2] or tonumber(h[2]) <= tonumber(ARGV[1]) then return -1 end
if ARGV[2] ~= '' and tonumber(h[1]) ~= tonumber(ARGV[2]) then
  local cur = redis.call('HMGET', KEYS[1], 'c', 'j')
  return { -2, h[1], cur[1], h[2], cur[2] }
end
local first_del = 5 + 2 * tonumber(ARGV[4])
if first_del <= #ARGV then
  local del = {}
  for i = first_del, #ARGV do del[#del + 1] = 'd:' .. ARGV[i] end
  chunked('HDEL', KEYS[1], del)
end
local set = {}
for i = 5, first_del - 1, 2 do
  set[#set + 1] = 'd:' .. ARGV[i]
  set[#set + 1] = ARGV[i + 1]
end
if ARGV[3] ~= '' then
  set[#set + 1] = 'e'
  set[#set + 1] = ARGV[3]
end
if #set > 0 then chunked('HSET', KEYS[1], set) end
if first_del > 5 or first_del <= #ARGV then rebuild(KEYS[1]) end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
-- After the writes: an expiry in the past deletes the key, and nothing may recreate it afterwards.
if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return v
`;

/** ARGV: now, expiresAt. 1 when the live session's expiry moved, else 0. Never touches the data fields. */
const TOUCH = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`;

/** ARGV: now, tombstoneUntil. */
const DESTROY = `
redis.call('DEL', KEYS[1])
if tonumber(ARGV[2]) > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
`;

// Sessions by user (plain Redis and Sentinel): the hash's `u` field holds the user, and the SET
// `<prefix>:u:{<sha256(userId)>}` holds the keys of the user's sessions. The set expires at the latest absolute
// end of its sessions, so it outlives every one of them; members destroyed or expired one by one are pruned
// by the next list or destroy-by-user. Those two scripts reach session keys they are not given in KEYS:
// valid on one server, not on Redis Cluster, where the user's set lives in another slot than its sessions.
// Redis Cluster has its own scheme further down (CLUSTER_*), correct without a cross-slot script.

/** KEYS: session, tombstone, user set. ARGV: now, userId, indexUntil, the session's store key. 1 bound, 0 gone. */
const BIND = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
local ttl = redis.call('PTTL', KEYS[3])
if ttl < 0 or ttl < tonumber(ARGV[3]) - tonumber(ARGV[1]) then redis.call('PEXPIREAT', KEYS[3], ARGV[3]) end
return 1
`;

/**
 * KEYS: user set. ARGV: now, userId, session prefix, tombstone prefix, then 'list' or 'destroy', then (destroy)
 * tombstoneUntil and the key to keep (or ''). list: flat { key, c, e, ... }; destroy: the number destroyed.
 */
const BY_USER = `
local now = tonumber(ARGV[1])
local out = {}
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sk = ARGV[3] .. k .. '}'
  local h = redis.call('HMGET', sk, 'c', 'e', 'u')
  if not h[2] or tonumber(h[2]) <= now or h[3] ~= ARGV[2] then
    redis.call('SREM', KEYS[1], k)
  elseif ARGV[5] == 'list' then
    out[#out + 1] = k
    out[#out + 1] = h[1]
    out[#out + 1] = h[2]
  elseif k ~= ARGV[7] then
    redis.call('DEL', sk)
    if tonumber(ARGV[6]) > now then redis.call('SET', ARGV[4] .. k .. '}', '1', 'PXAT', ARGV[6]) end
    redis.call('SREM', KEYS[1], k)
    n = n + 1
  end
end
if ARGV[5] == 'list' then return out end
return n
`;

// Sessions by user on Redis Cluster. The user's set `<prefix>:ut:{<sha256(userId)>}` lives in another slot
// than the session, so no one script can change both. A bind is three steps, each one script on one slot:
//   1. the session records the bind's random token:        HSET s p <token>       (only if alive)
//   2. the user's set gains `<key>:<token>`:                SADD ut <key>:<token>
//   3. the session records its user, if still that bind's:  HSET s u <userId>      (only if p = <token>)
// A session whose `u` is the user is therefore always in the set (step 2 comes before step 3), so listing and
// destroying never miss one. A listing reads every member's session (one script per slot) and removes, by the
// exact member, only entries that can never name a session of this user again: the session is gone, or its
// `u` is another user and its `p` is another bind (step 3 of an older bind fails once `p` has moved on). An
// entry whose bind is still between steps 2 and 3 (`p` = its token) is kept and not listed. Removing the
// exact `<key>:<token>` member, never `<key>` alone, is what makes a late SREM harmless to a newer bind.

/** Step 1. KEYS: session, tombstone. ARGV: now, token. 1 recorded, 0 gone. */
const CLUSTER_BIND_BEGIN = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[2])
return 1
`;

/** Step 2. KEYS: the user's set. ARGV: now, indexUntil, `<key>:<token>`. */
const CLUSTER_USER_ADD = `
redis.call('SADD', KEYS[1], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl < tonumber(ARGV[2]) - tonumber(ARGV[1]) then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
`;

/** Step 3. KEYS: session, tombstone. ARGV: now, token, userId. 1 bound (or a newer bind took over), 0 gone. */
const CLUSTER_BIND_END = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'e', 'p')
if not h[1] or tonumber(h[1]) <= tonumber(ARGV[1]) then return 0 end
if h[2] == ARGV[2] then redis.call('HSET', KEYS[1], 'u', ARGV[3]) end
return 1
`;

/** KEYS: session, tombstone. ARGV: now. { c, e, u, p } of a live session ('' for no u/p), else 0. */
const CLUSTER_PEEK = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local h = redis.call('HMGET', KEYS[1], 'c', 'e', 'u', 'p')
if not h[2] or tonumber(h[2]) <= tonumber(ARGV[1]) then return 0 end
return { h[1], h[2], h[3] or '', h[4] or '' }
`;

/** KEYS: session, tombstone. ARGV: now, tombstoneUntil, userId. Destroys it only while bound to userId: 1, else 0. */
const CLUSTER_DESTROY_BOUND = `
local h = redis.call('HMGET', KEYS[1], 'e', 'u')
if not h[1] or tonumber(h[1]) <= tonumber(ARGV[1]) or h[2] ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[2]) > tonumber(ARGV[1]) then redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[2]) end
return 1
`;

type Script = (sessionKey: string, tombstoneKey: string, ...argv: (string | number)[]) => Promise<number>;
interface SessionCommands {
  clonesCreate: Script;
  clonesPatch: (
    sessionKey: string,
    tombstoneKey: string,
    ...argv: (string | number)[]
  ) => Promise<number | [number, string, string, string, string]>;
  clonesTouch: Script;
  clonesDestroy: Script;
  clonesBind: (s: string, t: string, u: string, ...argv: (string | number)[]) => Promise<number>;
  clonesByUser: (userSet: string, ...argv: (string | number)[]) => Promise<number | string[]>;
  clonesClusterBindBegin: Script;
  clonesClusterUserAdd: (userSet: string, ...argv: (string | number)[]) => Promise<number>;
  clonesClusterBindEnd: Script;
  clonesClusterPeek: (s: string, t: string, now: number) => Promise<0 | [string, string, string, string]>;
  clonesClusterDestroyBound: Script;
}

/** One session a cluster user set names, with its live state and the set's entries for it. */
interface ClusterMember {
  key: string;
  /** The `<key>:<token>` members of the user's set for this session. */
  entries: string[];
  createdAt: number;
  expiresAt: number;
}

const log = logger.child({ part: 'session', store: 'redis' });

/**
 * Sessions in Redis or Valkey (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; add
 * `?ca=/path/ca.pem` for a private CA, or `?tls_insecure=1` to accept any certificate). Also behind Sentinel
 * (`redis+sentinel://s1:26379,s2:26379/<masterName>[/db]`: the master is asked of the sentinels and followed
 * through a failover) and on Redis Cluster (`redis+cluster://h1:6379,h2:6379`). A read is one HMGET and one
 * JSON.parse; every write is one Lua script, atomic on the server. Connects on first use and reconnects by itself after an
 * outage: a call made while disconnected waits up to `connectTimeout` for the connection, then fails, and once
 * an outage has lasted longer than that, calls fail at once until Redis is back.
 *
 * @example
 *   const store = new RedisStore({ url: 'redis://127.0.0.1:6379/0', connectTimeout: 2000, prefix: 'clones' });
 *   const session = await store.get(key);
 *   new RedisStore({ url: 'redis+cluster://10.0.0.1:6379,10.0.0.2:6379', connectTimeout: 2000, prefix: 'clones' });
 */
export class RedisStore implements SessionStore {
  readonly kind: string = 'redis';
  readonly #redis: (Redis | Cluster) & SessionCommands;
  readonly #s: string;
  readonly #t: string;
  readonly #connectTimeout: number;
  readonly #u: string;
  readonly #ut: string;
  readonly #cluster: boolean;
  #whenReady: Promise<void> | undefined;
  #lastError: Error | undefined;
  /** When the current outage began (first error since the last 'ready'). */
  #downSince = 0;
  #closed = false;
  /** True when the client was the app's (`store: redisClient`): the app closes it, not the store. */
  readonly #borrowed: boolean;

  constructor(options: StoreOpenOptions) {
    this.#borrowed = options.client !== undefined;
    this.#connectTimeout = options.connectTimeout;
    this.#s = `${options.prefix}:s:{`;
    this.#t = `${options.prefix}:t:{`;
    this.#u = `${options.prefix}:u:{`;
    this.#ut = `${options.prefix}:ut:{`;
    const perConnection = {
      connectTimeout: options.connectTimeout,
      // A write in flight when the connection drops may or may not have run: resending it could apply a
      // compare-and-set patch twice (it would then report a conflict and update(fn) would run fn again).
      // So in-flight calls fail at the first disconnect (maxRetriesPerRequest 0) and are never resent.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // A connection that stops answering (a failover behind a virtual IP, a dropped NAT entry) would hold
      // every call until the kernel gives up, minutes later: drop it and reconnect instead.
      socketTimeout: Math.max(options.connectTimeout, 1000),
    };
    const retry = (attempt: number) => Math.min(100 * attempt, 2000);
    const topology = /^redis\+/i.test(options.url) ? redisTopology(options.url) : undefined;
    let client: Redis | Cluster;
    if (options.client !== undefined) {
      // The app's own client, with its own retry and queue settings: a command it resends after a reconnect
      // could apply a compare-and-set twice (update(fn) then runs fn again, still without a lost update).
      client = options.client as Redis | Cluster;
      if (client instanceof Cluster) this.kind = 'redis cluster';
    } else if (topology?.mode === 'cluster') {
      this.kind = 'redis cluster';
      const { nodes, mode: _, ...auth } = topology;
      client = new Cluster(nodes, {
        redisOptions: { ...perConnection, ...auth },
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: retry,
        // MOVED, ASK, TRYAGAIN and CLUSTERDOWN mean the command did not run, so the client follows them; a
        // closed connection does not say, and a resent write could apply twice (see maxRetriesPerRequest).
        retryDelayOnFailover: 0,
      });
    } else {
      if (topology?.mode === 'sentinel') this.kind = 'redis sentinel';
      const connection: RedisOptions =
        topology?.mode === 'sentinel'
          ? {
              sentinels: topology.sentinels,
              name: topology.name,
              db: topology.db,
              ...(topology.username ? { username: topology.username } : {}),
              ...(topology.password ? { password: topology.password } : {}),
              ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
              // Learn of a failover from the sentinels at once, even when the old master stays reachable.
              failoverDetector: true,
            }
          : redisConnection(options.url);
      client = new Redis({
        ...connection,
        ...perConnection,
        lazyConnect: true,
        // A call never waits in an unbounded offline queue: #connected() waits for 'ready' with a deadline,
        // so nothing is sent late after its caller has already been told it failed.
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        retryStrategy: retry,
      });
    }
    // The scripts and the data layout are the same on every topology: the hash tag keeps a session's keys in
    // one slot, so a script never spans two cluster shards.
    this.#redis = client as (Redis | Cluster) & SessionCommands;
    this.#redis.defineCommand('clonesCreate', { lua: CREATE, numberOfKeys: 2 });
    this.#redis.defineCommand('clonesPatch', { lua: PATCH, numberOfKeys: 2 });
    this.#redis.defineCommand('clonesTouch', { lua: TOUCH, numberOfKeys: 2 });
    this.#redis.defineCommand('clonesDestroy', { lua: DESTROY, numberOfKeys: 2 });
    this.#cluster = topology?.mode === 'cluster' || client instanceof Cluster;
    if (!this.#cluster) {
      this.#redis.defineCommand('clonesBind', { lua: BIND, numberOfKeys: 3 });
      this.#redis.defineCommand('clonesByUser', { lua: BY_USER, numberOfKeys: 1 });
    } else {
      this.#redis.defineCommand('clonesClusterBindBegin', { lua: CLUSTER_BIND_BEGIN, numberOfKeys: 2 });
      this.#redis.defineCommand('clonesClusterUserAdd', { lua: CLUSTER_USER_ADD, numberOfKeys: 1 });
      this.#redis.defineCommand('clonesClusterBindEnd', { lua: CLUSTER_BIND_END, numberOfKeys: 2 });
      this.#redis.defineCommand('clonesClusterPeek', { lua: CLUSTER_PEEK, numberOfKeys: 2 });
      this.#redis.defineCommand('clonesClusterDestroyBound', { lua: CLUSTER_DESTROY_BOUND, numberOfKeys: 2 });
    }
    this.#redis.on('error', (err: Error) => {
      // Warn once per outage; ioredis repeats the error on every reconnect attempt.
      if (!this.#lastError) log.warn({ err: err.message }, 'redis session store unavailable; reconnecting');
      else log.debug({ err: err.message }, 'redis session store still unavailable');
      this.#lastError = err;
      if (this.#downSince === 0) this.#downSince = Date.now();
    });
    this.#redis.on('ready', () => {
      if (this.#lastError) log.info('redis session store reconnected');
      this.#lastError = undefined;
      this.#downSince = 0;
    });
  }

  async get(key: string): Promise<StoredSession | null> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    const [v, c, e, j, u] = await this.#redis.hmget(`${this.#s}${key}}`, 'v', 'c', 'e', 'j', 'u');
    if (e == null || j == null) return null;
    const expiresAt = +e;
    if (expiresAt <= Date.now()) return null;
    const session: StoredSession = {
      data: JSON.parse(j),
      version: +(v as string),
      createdAt: +(c as string),
      expiresAt,
    };
    if (u != null) session.userId = u;
    return session;
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    const argv: (string | number)[] = [Date.now(), session.version, session.createdAt, session.expiresAt, ''];
    let j = '{';
    for (const name of Object.keys(session.data)) {
      const json = JSON.stringify(session.data[name]);
      if (json === undefined) continue; // as JSON.stringify of the whole object would
      argv.push(name, json);
      j += `${j.length === 1 ? '' : ','}${JSON.stringify(name)}:${json}`;
    }
    argv[4] = `${j}}`;
    const r = await this.#redis.clonesCreate(`${this.#s}${key}}`, `${this.#t}${key}}`, ...argv);
    return r === -1 ? GONE : r === -2 ? CONFLICT : { ok: true, version: r };
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    const argv: (string | number)[] = [Date.now(), options.ifVersion ?? '', options.expiresAt ?? '', 0];
    let dropped: string[] | undefined;
    for (const name of Object.keys(patch.set)) {
      const json = JSON.stringify(patch.set[name]);
      // JSON has no undefined: as in JSON.stringify of the whole object, such a key disappears.
      if (json !== undefined) argv.push(name, json);
      else if (dropped) dropped.push(name);
      else dropped = [name];
    }
    argv[3] = (argv.length - 4) / 2;
    for (const name of patch.del) argv.push(name);
    if (dropped) for (const name of dropped) argv.push(name);
    const r: number | [number, string, string, string, string] = await this.#redis.clonesPatch(
      `${this.#s}${key}}`,
      `${this.#t}${key}}`,
      ...argv,
    );
    if (Array.isArray(r)) {
      const [, v, c, e, j] = r;
      const current = { data: JSON.parse(j), version: +v, createdAt: +c, expiresAt: +e };
      return { ok: false, reason: 'conflict', current };
    }
    return r === -1 ? GONE : r === -2 ? CONFLICT : { ok: true, version: r };
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    return (
      (await this.#redis.clonesTouch(`${this.#s}${key}}`, `${this.#t}${key}}`, Date.now(), expiresAt)) === 1
    );
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    await this.#redis.clonesDestroy(`${this.#s}${key}}`, `${this.#t}${key}}`, Date.now(), tombstoneUntil);
  }

  async bindUser(key: string, userId: string, indexUntil: number): Promise<boolean> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    if (this.#cluster) return this.#clusterBind(key, userId, indexUntil);
    const s = `${this.#s}${key}}`;
    const t = `${this.#t}${key}}`;
    return (
      (await this.#redis.clonesBind(s, t, this.#userSet(userId), Date.now(), userId, indexUntil, key)) === 1
    );
  }

  async listByUser(userId: string): Promise<UserSession[]> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    if (this.#cluster) {
      return (await this.#clusterMembers(userId)).map(({ key, createdAt, expiresAt }) => ({
        key,
        createdAt,
        expiresAt,
      }));
    }
    const flat = (await this.#redis.clonesByUser(
      this.#userSet(userId),
      Date.now(),
      userId,
      this.#s,
      this.#t,
      'list',
    )) as string[];
    const found: UserSession[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      found.push({
        key: flat[i] as string,
        createdAt: +(flat[i + 1] as string),
        expiresAt: +(flat[i + 2] as string),
      });
    }
    return found;
  }

  async destroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    if (this.#redis.status !== 'ready' || this.#closed) await this.#connected();
    if (this.#cluster) return this.#clusterDestroyByUser(userId, exceptKey, tombstoneUntil);
    const args = [Date.now(), userId, this.#s, this.#t, 'destroy', tombstoneUntil, exceptKey ?? ''];
    return (await this.#redis.clonesByUser(this.#userSet(userId), ...args)) as number;
  }

  /** The three steps of a cluster bind (see CLUSTER_BIND_BEGIN): the set learns of the session first. */
  async #clusterBind(key: string, userId: string, indexUntil: number): Promise<boolean> {
    const s = `${this.#s}${key}}`;
    const t = `${this.#t}${key}}`;
    const token = randomBytes(8).toString('hex');
    if ((await this.#redis.clonesClusterBindBegin(s, t, Date.now(), token)) !== 1) return false;
    const set = this.#userTokens(userId);
    const entry = `${key}:${token}`;
    await this.#redis.clonesClusterUserAdd(set, Date.now(), indexUntil, entry);
    if ((await this.#redis.clonesClusterBindEnd(s, t, Date.now(), token, userId)) === 1) return true;
    // Destroyed meanwhile: the entry is stale already; removing it now only saves the next listing the work.
    await this.#redis.srem(set, entry);
    return false;
  }

  /**
   * The user's live sessions on a cluster: each member's session is read (the reads of one shard share a
   * pipeline), and the entries that can never name a session of this user again are removed by exact member.
   */
  async #clusterMembers(userId: string): Promise<ClusterMember[]> {
    const set = this.#userTokens(userId);
    const byKey = new Map<string, string[]>();
    for (const entry of await this.#redis.smembers(set)) {
      const colon = entry.lastIndexOf(':');
      const key = entry.slice(0, colon);
      const entries = byKey.get(key);
      if (entries) entries.push(entry);
      else byKey.set(key, [entry]);
    }
    const now = Date.now();
    const keys = [...byKey.keys()];
    const peeks = await Promise.all(
      keys.map((k) => this.#redis.clonesClusterPeek(`${this.#s}${k}}`, `${this.#t}${k}}`, now)),
    );
    const stale: string[] = [];
    const found: ClusterMember[] = [];
    keys.forEach((key, i) => {
      const entries = byKey.get(key) as string[];
      const peek = peeks[i];
      if (!peek) {
        stale.push(...entries);
        return;
      }
      const [c, e, u, p] = peek;
      const current = `${key}:${p}`;
      if (u === userId) {
        // Bound: one entry is enough to find it. Keep the current bind's if the set has it, else any one.
        const keep = entries.includes(current) ? current : (entries[0] as string);
        stale.push(...entries.filter((x) => x !== keep));
        found.push({ key, entries, createdAt: +c, expiresAt: +e });
      } else {
        // Bound elsewhere or not yet: only the entry of a bind still in progress may become this user's.
        stale.push(...entries.filter((x) => x !== current));
      }
    });
    if (stale.length > 0) await this.#redis.srem(set, ...stale);
    return found;
  }

  async #clusterDestroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    const targets = (await this.#clusterMembers(userId)).filter((m) => m.key !== exceptKey);
    const now = Date.now();
    const done = await Promise.all(
      targets.map((m) =>
        this.#redis.clonesClusterDestroyBound(
          `${this.#s}${m.key}}`,
          `${this.#t}${m.key}}`,
          now,
          tombstoneUntil,
          userId,
        ),
      ),
    );
    const entries = targets.flatMap((m, i) => (done[i] === 1 ? m.entries : []));
    if (entries.length > 0) await this.#redis.srem(this.#userTokens(userId), ...entries);
    return done.filter((r) => r === 1).length;
  }

  /** The cluster's per-user set of `<key>:<token>` entries, in the slot of the hashed user id. */
  #userTokens(userId: string): string {
    return `${this.#ut}${hashUser(userId)}}`;
  }

  /** The user's set: the id hashed, so any string is a safe key and the user id is not spelled out in keys. */
  #userSet(userId: string): string {
    return `${this.#u}${hashUser(userId)}}`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#borrowed) return;
    if (this.#redis.status === 'ready') {
      await this.#redis.quit().catch(() => {});
      // QUIT ends the data connection only: the sentinel subscriptions of the failover detector would keep
      // reconnecting. disconnect() after it releases them, and is harmless on the other topologies.
      this.#redis.disconnect();
    } else {
      this.#redis.disconnect();
    }
  }

  /**
   * The slow path: first use, or an outage. Waits for 'ready' up to connectTimeout, so a blip (a restart, a
   * failover) costs a short wait rather than an error. Once an outage has outlasted connectTimeout, calls fail
   * at once instead of piling up; the reconnect loop keeps trying in the background.
   */
  #connected(): Promise<void> {
    const redis = this.#redis;
    if (this.#closed || redis.status === 'end') {
      return Promise.reject(storeUnavailable(this.kind, new Error('the store was closed')));
    }
    if (this.#downSince !== 0 && Date.now() - this.#downSince >= this.#connectTimeout) {
      const why = this.#lastError?.message ?? 'no answer';
      const seconds = ((Date.now() - this.#downSince) / 1000).toFixed(1);
      return Promise.reject(storeUnavailable(this.kind, new Error(`down for ${seconds} s (${why})`)));
    }
    // The error (if any) reaches the 'error' listener; the retry strategy keeps trying in the background.
    if (redis.status === 'wait') redis.connect().catch(() => {});
    this.#whenReady ??= new Promise<void>((resolve) => {
      redis.once('ready', () => {
        this.#whenReady = undefined;
        resolve();
      });
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const why = this.#lastError?.message ?? 'no answer';
        reject(
          storeUnavailable(this.kind, new Error(`not connected within ${this.#connectTimeout} ms (${why})`)),
        );
      }, this.#connectTimeout);
      this.#whenReady?.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** The PEM of a private CA (`rediss://...?ca=/path/ca.pem`), read once when the store is opened. */
function readCa(url: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw badStoreUrl(url, `cannot read the CA file: ${(err as Error).message}`);
  }
}

/** Host, port, credentials, db and TLS from a `redis://` or `rediss://` URL, validated once. */
export function redisConnection(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badStoreUrl(url, 'not a URL; expected redis://[user:password@]host:port[/db]');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw badStoreUrl(url, 'expected redis:// or rediss://');
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0)
    throw badStoreUrl(url, `"${u.pathname.slice(1)}" is not a database number`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const insecure = u.searchParams.get('tls_insecure');
  const ca = u.searchParams.get('ca');
  for (const name of u.searchParams.keys()) {
    if (name !== 'tls_insecure' && name !== 'ca') {
      throw badStoreUrl(url, `unknown parameter "${name}"; known: tls_insecure, ca`);
    }
  }
  if ((insecure !== null || ca !== null) && u.protocol !== 'rediss:') {
    throw badStoreUrl(url, 'tls_insecure and ca need rediss://');
  }
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port,
    db,
  };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') {
    options.tls = insecure === '1' || insecure === 'true' ? { rejectUnauthorized: false } : {};
    if (ca) options.tls.ca = readCa(url, ca);
  }
  return options;
}

/** A user id as it appears in keys: hashed, so any string is a safe key and no user id is spelled out. */
function hashUser(userId: string): string {
  return createHash('sha256').update(userId).digest('hex');
}
