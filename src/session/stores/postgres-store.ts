import pg from 'pg';
import { badStoreUrl, storeSchemaTooNew } from '../../errors.ts';
import { logger } from '../../logger.ts';
import { CONFLICT, GONE } from './apply-patch.ts';
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
import { storedSession } from './stored-session.ts';

// Layout (docs/session-format.md): one row per session in `<prefix>_sessions`: key (hex SHA-256 of the id),
// data (jsonb), version, created_at and expires_at (ms since the epoch), dead_until (set on a tombstone, whose
// data is NULL). Every write is one statement, atomic on its row: a patch is
// `data = (data - <deleted keys>) || <set keys>` guarded by "alive" (and the version for ifVersion).
// `clones_schema` records each table's schema version, so a later release knows what to migrate.

/** The schema this code writes and reads. */
const SCHEMA_VERSION = 1;
const SWEEP_EVERY_MS = 5 * 60_000;
const SWEEP_BATCH = 1000;
const POOL_SIZE = 10;

const log = logger.child({ part: 'session', store: 'postgres' });

interface Row {
  data: SessionData;
  version: number;
  created_at: string;
  expires_at: string;
  user_id: string | null;
}

/**
 * Sessions in PostgreSQL (`postgres://user:password@host:5432/db`, any libpq-style URL `pg` accepts). The
 * table is created and migrated by the store on first use (under an advisory lock, so clones starting
 * together do not race), with its schema version kept in `clones_schema`. Expired rows are deleted every
 * five minutes by whichever clone wins `pg_try_advisory_xact_lock`: one clone sweeps, the others skip.
 *
 * @example
 *   const store = new PostgresStore({ url: 'postgres://app@db:5432/app', connectTimeout: 2000, prefix: 'clones' });
 */
export class PostgresStore implements StoreBackend {
  readonly kind = 'postgres';
  readonly table: string;
  readonly #pool: pg.Pool;
  readonly #sql: ReturnType<typeof statements>;
  #sweeper: NodeJS.Timeout | undefined;
  /** True when the pool was the app's (`store: pool`): the app closes it, not the store. */
  readonly #borrowed: boolean;

  constructor(options: StoreOpenOptions) {
    this.table = tableName(options.prefix);
    this.#sql = statements(this.table);
    this.#borrowed = options.client !== undefined;
    if (options.client !== undefined) {
      this.#pool = options.client as pg.Pool;
      return;
    }
    if (!/^postgres(ql)?:\/\//i.test(options.url)) {
      throw badStoreUrl(options.url, 'expected postgres://user:password@host:5432/database');
    }
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: POOL_SIZE,
      connectionTimeoutMillis: options.connectTimeout,
      // A statement stuck behind a lock or a dead server is abandoned rather than held.
      query_timeout: Math.max(options.connectTimeout, 1000),
      idleTimeoutMillis: 30_000,
    });
    // An idle connection that dies (a restart, a failover) is reported here; the pool drops it and the next
    // query opens a new one, so the store recovers by itself.
    this.#pool.on('error', (err) => log.warn({ err: err.message }, 'postgres session connection lost'));
  }

  async get(key: string): Promise<StoredSession | null> {
    const { rows } = await this.#pool.query<Row>(this.#sql.get, [key, Date.now()]);
    return rows[0] ? session(rows[0]) : null;
  }

  async create(key: string, s: StoredSession): Promise<WriteResult> {
    const now = Date.now();
    const { rows } = await this.#pool.query(this.#sql.create, [
      key,
      JSON.stringify(s.data),
      s.version,
      s.createdAt,
      s.expiresAt,
      now,
    ]);
    if (rows.length === 1) return { ok: true, version: s.version };
    const dead = await this.#pool.query(this.#sql.deadUntil, [key]);
    const until = dead.rows[0]?.dead_until;
    return until != null && Number(until) > now ? GONE : CONFLICT;
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    const setJson = JSON.stringify(patch.set);
    const set = JSON.parse(setJson) as SessionData;
    // A key set to undefined disappears, as in JSON.stringify of the whole object.
    const del = [...patch.del, ...Object.keys(patch.set).filter((k) => !Object.hasOwn(set, k))];
    const { rows } = await this.#pool.query<{ version: number }>(this.#sql.patch, [
      key,
      del,
      setJson,
      options.expiresAt ?? null,
      Date.now(),
      options.ifVersion ?? null,
    ]);
    if (rows[0]) return { ok: true, version: rows[0].version };
    if (options.ifVersion === undefined) return GONE;
    const current = await this.get(key);
    if (!current) return GONE;
    return current.version === options.ifVersion ? GONE : { ok: false, reason: 'conflict', current };
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    const { rowCount } = await this.#pool.query(this.#sql.touch, [key, expiresAt, Date.now()]);
    return rowCount === 1;
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    if (tombstoneUntil <= Date.now()) await this.#pool.query(this.#sql.delete, [key]);
    else await this.#pool.query(this.#sql.destroy, [key, tombstoneUntil]);
  }

  async bindUser(key: string, userId: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(this.#sql.bindUser, [key, userId, Date.now()]);
    return rowCount === 1;
  }

  async listByUser(userId: string): Promise<UserSession[]> {
    const { rows } = await this.#pool.query<{ key: string; created_at: string; expires_at: string }>(
      this.#sql.listByUser,
      [userId, Date.now()],
    );
    return rows.map((r) => ({
      key: r.key,
      createdAt: Number(r.created_at),
      expiresAt: Number(r.expires_at),
    }));
  }

  /** One statement: every matching row becomes a tombstone at once, as `destroy` leaves one. */
  async destroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    const args = [userId, Date.now(), tombstoneUntil, exceptKey ?? null];
    const { rowCount } = await this.#pool.query(this.#sql.destroyByUser, args);
    return rowCount ?? 0;
  }

  /**
   * Deletes expired sessions and ended tombstones in batches, if no other clone is sweeping this table right
   * now; answers how many rows it deleted (0 when another clone holds the lock).
   */
  async sweep(now = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const client = await this.#pool.connect();
      let deleted = 0;
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ won: boolean }>(
          'SELECT pg_try_advisory_xact_lock(hashtext($1)) AS won',
          [`clones-sweep:${this.table}`],
        );
        if (rows[0]?.won) deleted = (await client.query(this.#sql.sweep, [now, SWEEP_BATCH])).rowCount ?? 0;
        await client.query('COMMIT');
        if (!rows[0]?.won) return total;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
      total += deleted;
      if (deleted < SWEEP_BATCH) return total;
    }
  }

  /** Creates or migrates the table (the RuntimeStore runs this once before the first call), then sweeps. */
  async init(): Promise<void> {
    await migrate(this.#pool, this.table);
    this.#sweeper = setInterval(() => {
      this.sweep().catch((err) => log.debug({ err: err.message }, 'session sweep skipped'));
    }, SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    if (!this.#borrowed) await this.#pool.end();
  }
}

/** Creates or upgrades the table, once, under a transaction-scoped advisory lock. */
async function migrate(pool: pg.Pool, table: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`clones-migrate:${table}`]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS clones_schema (name text PRIMARY KEY, version integer NOT NULL)',
    );
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM clones_schema WHERE name = $1',
      [table],
    );
    const found = rows[0]?.version ?? 0;
    if (found > SCHEMA_VERSION) throw storeSchemaTooNew(`postgres table ${table}`, found, SCHEMA_VERSION);
    if (found < 1) {
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${table} (
          key text PRIMARY KEY,
          data jsonb,
          version integer NOT NULL,
          created_at bigint NOT NULL,
          expires_at bigint NOT NULL,
          dead_until bigint
        )`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${table}_expires_at ON ${table} (expires_at)`);
      await client.query(
        `INSERT INTO clones_schema (name, version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version`,
        [table, SCHEMA_VERSION],
      );
      log.info({ table, version: SCHEMA_VERSION }, 'created the postgres session table');
    }
    // user_id came later, added in place with the version left at 1, so an older clone (which would refuse a
    // newer version) still runs against the table: its statements name their columns.
    const column = await client.query(
      `SELECT 1 FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'user_id'`,
      [table],
    );
    if (column.rowCount === 0) {
      await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS user_id text`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS ${table}_user_id ON ${table} (user_id) WHERE user_id IS NOT NULL`,
      );
    }
    // Later versions add steps here: `if (found < 2) { ALTER TABLE ... }`, each bumping clones_schema.
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

function statements(t: string) {
  const alive = 'dead_until IS NULL AND expires_at > $';
  return {
    get: `SELECT data, version, created_at, expires_at, user_id FROM ${t} WHERE key = $1 AND ${alive}2`,
    bindUser: `UPDATE ${t} SET user_id = $2 WHERE key = $1 AND ${alive}3`,
    listByUser: `SELECT key, created_at, expires_at FROM ${t} WHERE user_id = $1 AND ${alive}2`,
    destroyByUser: `UPDATE ${t} SET data = NULL, expires_at = $3, dead_until = $3, user_id = NULL
      WHERE user_id = $1 AND ${alive}2 AND key IS DISTINCT FROM $4::text`,
    // Takes the key when it is free: no row, an ended tombstone, or a session past its expiry.
    create: `INSERT INTO ${t} AS s (key, data, version, created_at, expires_at, dead_until)
      VALUES ($1, $2::jsonb, $3, $4, $5, NULL)
      ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, dead_until = NULL, user_id = NULL
      WHERE (s.dead_until IS NOT NULL AND s.dead_until <= $6) OR (s.dead_until IS NULL AND s.expires_at <= $6)
      RETURNING version`,
    deadUntil: `SELECT dead_until FROM ${t} WHERE key = $1`,
    patch: `UPDATE ${t} SET data = (data - $2::text[]) || $3::jsonb, version = version + 1,
        expires_at = COALESCE($4::bigint, expires_at)
      WHERE key = $1 AND ${alive}5 AND ($6::integer IS NULL OR version = $6::integer)
      RETURNING version`,
    touch: `UPDATE ${t} SET expires_at = $2 WHERE key = $1 AND ${alive}3`,
    destroy: `INSERT INTO ${t} (key, data, version, created_at, expires_at, dead_until)
      VALUES ($1, NULL, 0, 0, $2, $2)
      ON CONFLICT (key) DO UPDATE SET data = NULL, expires_at = $2, dead_until = $2, user_id = NULL`,
    delete: `DELETE FROM ${t} WHERE key = $1`,
    // Tombstones have expires_at = dead_until, so one condition covers both kinds of row.
    sweep: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE expires_at <= $1 LIMIT $2)`,
  };
}

function session(row: Row): StoredSession {
  return storedSession(row.data, row.version, Number(row.created_at), Number(row.expires_at), row.user_id);
}

/** `prefix` as a safe SQL identifier: lower-case letters, digits and underscores, then `_sessions`. */
function tableName(prefix: string): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${/^[a-z_]/.test(safe) ? safe : `t_${safe}`}_sessions`;
}
