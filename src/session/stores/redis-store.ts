import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { storeUnavailable } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { CONFLICT, GONE } from './apply-patch.ts';
import { destroyListed } from './destroy-listed.ts';
import { defineSessionCommands, type SessionCommands } from './redis-scripts.ts';
import { redisClient } from './redis-topology.ts';
import type {
  PatchOptions,
  SessionPatch,
  StoreBackend,
  StoredSession,
  StoreOpenOptions,
  UserSession,
  WriteResult,
} from './store.ts';

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
export class RedisStore implements StoreBackend {
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
  /** True when the client was the app's (`store: redisClient`): the app closes it, not the store. */
  readonly #borrowed: boolean;

  constructor(options: StoreOpenOptions) {
    this.#borrowed = options.client !== undefined;
    this.#connectTimeout = options.connectTimeout;
    this.#s = `${options.prefix}:s:{`;
    this.#t = `${options.prefix}:t:{`;
    this.#u = `${options.prefix}:u:{`;
    this.#ut = `${options.prefix}:ut:{`;
    const { client, kind, cluster } = redisClient(options);
    this.kind = kind;
    this.#cluster = cluster;
    this.#redis = defineSessionCommands(client, cluster);
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
    return (
      (await this.#redis.clonesTouch(`${this.#s}${key}}`, `${this.#t}${key}}`, Date.now(), expiresAt)) === 1
    );
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    await this.#redis.clonesDestroy(`${this.#s}${key}}`, `${this.#t}${key}}`, Date.now(), tombstoneUntil);
  }

  async bindUser(key: string, userId: string, indexUntil: number): Promise<boolean> {
    if (this.#cluster) return this.#clusterBind(key, userId, indexUntil);
    const s = `${this.#s}${key}}`;
    const t = `${this.#t}${key}}`;
    return (
      (await this.#redis.clonesBind(s, t, this.#userSet(userId), Date.now(), userId, indexUntil, key)) === 1
    );
  }

  async listByUser(userId: string): Promise<UserSession[]> {
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
    const now = Date.now();
    const destroy = async ({ key }: ClusterMember) =>
      (await this.#redis.clonesClusterDestroyBound(
        `${this.#s}${key}}`,
        `${this.#t}${key}}`,
        now,
        tombstoneUntil,
        userId,
      )) === 1;
    const done = await destroyListed(await this.#clusterMembers(userId), exceptKey, destroy);
    const entries = done.flatMap((m) => m.entries);
    if (entries.length > 0) await this.#redis.srem(this.#userTokens(userId), ...entries);
    return done.length;
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

  /** False while the client is not connected: the RuntimeStore then runs `init` before the next call. */
  get connected(): boolean {
    return this.#redis.status === 'ready';
  }

  /**
   * The slow path, run by the RuntimeStore on first use and during an outage. Waits for 'ready' up to
   * connectTimeout, so a blip (a restart, a failover) costs a short wait rather than an error. Once an outage
   * has outlasted connectTimeout, calls fail at once instead of piling up; the reconnect loop keeps trying in
   * the background.
   */
  init(): Promise<void> {
    const redis = this.#redis;
    if (redis.status === 'ready') return Promise.resolve();
    if (redis.status === 'end') {
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

/** A user id as it appears in keys: hashed, so any string is a safe key and no user id is spelled out. */
function hashUser(userId: string): string {
  return createHash('sha256').update(userId).digest('hex');
}
