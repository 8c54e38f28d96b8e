import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { badStoreUrl, storeSchemaTooNew } from '../../errors.ts';
import { driverLoadFailed, requireDriver } from '../../require-driver.ts';
import { applyPatch } from './apply-patch.ts';
import type {
  PatchOptions,
  SessionPatch,
  StoreBackend,
  StoredSession,
  StoreOpenOptions,
  UserSession,
  WriteResult,
} from './store.ts';
import { storedSession } from './stored-session.ts';

/** The schema this code writes; `PRAGMA user_version` records it so later versions know what to migrate. */
const SCHEMA_VERSION = 1;
const DEFAULT_PATH = '.clones/sessions.db';
const SWEEP_EVERY_MS = 5 * 60_000;
/** Rows deleted per sweep transaction, so a big backlog never holds the write lock for long. */
const SWEEP_BATCH = 1000;

/**
 * Sessions in a SQLite file (WAL mode): the default store, shared by every clone on one host. Writes are
 * transactions that take the write lock up front (BEGIN IMMEDIATE), so a patch from one process cannot
 * interleave with a patch from another; readers never block writers.
 *
 * URL: `sqlite:<path>` (relative to the working directory, or absolute); `sqlite:` alone is
 * `.clones/sessions.db`. The parent directory is created. The table is `<prefix>_sessions`.
 *
 * @example
 *   const store = new SqliteStore({ url: 'sqlite:.clones/sessions.db', connectTimeout: 2000, prefix: 'clones' });
 *   await store.create(key, { data: {}, version: 1, createdAt: now, expiresAt: now + 86_400_000 });
 */
export class SqliteStore implements StoreBackend {
  readonly kind = 'sqlite';
  /** The file in use, resolved to an absolute path. */
  readonly path: string;
  readonly #db: Database;
  readonly #sql: Statements;
  readonly #createTx: (key: string, session: StoredSession, now: number) => WriteResult;
  readonly #patchTx: (key: string, patch: SessionPatch, options: PatchOptions, now: number) => WriteResult;
  readonly #destroyByUserTx: (userId: string, except: string, until: number, now: number) => number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: StoreOpenOptions) {
    this.path = sqlitePath(options.url);
    if (this.path !== ':memory:') {
      mkdirSync(dirname(this.path), { recursive: true });
      // Sessions are private: a new file is made 0600 (SQLite's -wal and -shm files take its mode).
      if (!existsSync(this.path)) closeSync(openSync(this.path, 'a', 0o600));
    }
    const Sqlite = loadDriver();
    // better-sqlite3 waits for a lock synchronously, holding the event loop: the wait must not outlast the
    // store timeout the engine promises (its own timer cannot fire while the loop is held).
    const busyMs = Math.max(1, Math.min(options.connectTimeout, 5000));
    try {
      this.#db = new Sqlite(this.path, { timeout: busyMs });
    } catch (err) {
      // The native binding is loaded here, on the first database opened: a failed build shows up now.
      throw driverLoadFailed(err, 'better-sqlite3', 'the sqlite: session store');
    }
    try {
      this.#db.pragma(`busy_timeout = ${busyMs}`);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      const table = tableName(options.prefix);
      migrate(this.#db, table);
      this.#sql = prepare(this.#db, table);
    } catch (err) {
      this.#db.close();
      throw err;
    }
    this.#createTx = this.#db.transaction(createIn(this.#sql)).immediate;
    this.#patchTx = this.#db.transaction(patchIn(this.#sql)).immediate;
    const sql = this.#sql;
    this.#destroyByUserTx = this.#db.transaction(
      (userId: string, except: string, until: number, now: number) =>
        sql.destroyByUser.run(until, userId, now, except).changes,
    ).immediate;
    this.sweep();
    this.#sweeper = setInterval(() => this.#sweepQuietly(), SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  async get(key: string): Promise<StoredSession | null> {
    const row = this.#sql.get.get(key, Date.now()) as LiveRow | undefined;
    if (!row) return null;
    return storedSession(JSON.parse(row.data), row.version, row.created_at, row.expires_at, row.user_id);
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    return this.#createTx(key, session, Date.now());
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    return this.#patchTx(key, patch, options, Date.now());
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    return this.#sql.touch.run(expiresAt, key, Date.now()).changes === 1;
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    this.#sql.destroy.run(key, Date.now(), tombstoneUntil);
  }

  async bindUser(key: string, userId: string): Promise<boolean> {
    return this.#sql.bindUser.run(userId, key, Date.now()).changes === 1;
  }

  async listByUser(userId: string): Promise<UserSession[]> {
    const rows = this.#sql.listByUser.all(userId, Date.now()) as UserRow[];
    return rows.map((r) => ({ key: r.key, createdAt: r.created_at, expiresAt: r.expires_at }));
  }

  /** One transaction: every matching row becomes a tombstone, as `destroy` leaves one. */
  async destroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    return this.#destroyByUserTx(userId, exceptKey ?? '', tombstoneUntil, Date.now());
  }

  /**
   * Deletes rows past their `expires_at`, live sessions and tombstones alike, and answers how many. Runs at
   * open and every five minutes; any process sharing the file may run it, deleting twice is harmless.
   */
  sweep(now = Date.now()): number {
    let total = 0;
    for (;;) {
      const { changes } = this.#sql.sweep.run(now, SWEEP_BATCH);
      total += changes;
      if (changes < SWEEP_BATCH) return total;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#db.close();
  }

  #sweepQuietly(): void {
    try {
      this.sweep();
    } catch {
      // Busy beyond busy_timeout or a closed file: the next sweep, or another process, will do it.
    }
  }
}

/** Maps `sqlite:<path>` to an absolute file path (`:memory:` is passed through for experiments). */
export function sqlitePath(url: string): string {
  if (!url.startsWith('sqlite:')) throw badStoreUrl(url, 'expected sqlite:<path>');
  const rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) {
    throw badStoreUrl(
      url,
      'write sqlite:<path>, e.g. sqlite:.clones/sessions.db or sqlite:/var/lib/app/sessions.db',
    );
  }
  if (rest === ':memory:') return rest;
  return resolve(rest === '' ? DEFAULT_PATH : rest);
}

/** `prefix` as a safe SQL identifier: lower-case letters, digits and underscores, then `_sessions`. */
export function tableName(prefix: string): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${/^[a-z_]/.test(safe) ? safe : `t_${safe}`}_sessions`;
}

function migrate(db: Database, table: string): void {
  // IMMEDIATE: two processes opening a new file at once must not both run the DDL half-way.
  db.transaction(() => {
    const found = db.pragma('user_version', { simple: true }) as number;
    if (found > SCHEMA_VERSION) throw storeSchemaTooNew('sqlite', found, SCHEMA_VERSION);
    // Always IF NOT EXISTS: several prefixes may share one file, and user_version belongs to the file.
    db.exec(`
      CREATE TABLE IF NOT EXISTS "${table}" (
        key TEXT PRIMARY KEY NOT NULL,
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        dead INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS "${table}_expires_at" ON "${table}" (expires_at);
    `);
    // user_id came later, added in place: user_version stays 1 so an older clone still opens the file (its
    // statements name their columns, and a NULL user_id is what they would have meant).
    const columns = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'user_id')) db.exec(`ALTER TABLE "${table}" ADD COLUMN user_id TEXT`);
    db.exec(
      `CREATE INDEX IF NOT EXISTS "${table}_user_id" ON "${table}" (user_id) WHERE user_id IS NOT NULL`,
    );
    if (found < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function prepare(db: Database, t: string): Statements {
  return {
    get: db.prepare(
      `SELECT data, version, created_at, expires_at, user_id FROM "${t}" WHERE key = ? AND dead = 0 AND expires_at > ?`,
    ),
    bindUser: db.prepare(`UPDATE "${t}" SET user_id = ? WHERE key = ? AND dead = 0 AND expires_at > ?`),
    listByUser: db.prepare(
      `SELECT key, created_at, expires_at FROM "${t}" WHERE user_id = ? AND dead = 0 AND expires_at > ?`,
    ),
    destroyByUser: db.prepare(
      `UPDATE "${t}" SET data = '{}', dead = 1, expires_at = ?, user_id = NULL
       WHERE user_id = ? AND dead = 0 AND expires_at > ? AND key <> ?`,
    ),
    head: db.prepare(`SELECT data, version, created_at, expires_at, dead FROM "${t}" WHERE key = ?`),
    upsert: db.prepare(
      `INSERT OR REPLACE INTO "${t}" (key, data, version, created_at, expires_at, dead) VALUES (?, ?, ?, ?, ?, 0)`,
    ),
    update: db.prepare(`UPDATE "${t}" SET data = ?, version = ?, expires_at = ? WHERE key = ?`),
    touch: db.prepare(`UPDATE "${t}" SET expires_at = ? WHERE key = ? AND dead = 0 AND expires_at > ?`),
    destroy: db.prepare(
      `INSERT INTO "${t}" (key, data, version, created_at, expires_at, dead) VALUES (?, '{}', 0, ?, ?, 1)
       ON CONFLICT (key) DO UPDATE SET data = '{}', dead = 1, expires_at = excluded.expires_at`,
    ),
    sweep: db.prepare(
      `DELETE FROM "${t}" WHERE key IN (SELECT key FROM "${t}" WHERE expires_at <= ? LIMIT ?)`,
    ),
  };
}

function createIn(sql: Statements) {
  return (key: string, session: StoredSession, now: number): WriteResult => {
    const row = sql.head.get(key) as HeadRow | undefined;
    // An expired row, live or tombstone, is as good as absent: the sweep just has not reached it yet.
    if (row && row.expires_at > now) return { ok: false, reason: row.dead ? 'gone' : 'conflict' };
    const data = JSON.stringify(session.data);
    sql.upsert.run(key, data, session.version, session.createdAt, session.expiresAt);
    return { ok: true, version: session.version };
  };
}

function patchIn(sql: Statements) {
  return (key: string, patch: SessionPatch, options: PatchOptions, now: number): WriteResult => {
    const row = sql.head.get(key) as HeadRow | undefined;
    if (!row || row.dead || row.expires_at <= now) return { ok: false, reason: 'gone' };
    if (options.ifVersion !== undefined && options.ifVersion !== row.version) {
      const current = {
        data: JSON.parse(row.data),
        version: row.version,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
      };
      return { ok: false, reason: 'conflict', current };
    }
    const data = applyPatch(JSON.parse(row.data), patch);
    const version = row.version + 1;
    sql.update.run(JSON.stringify(data), version, options.expiresAt ?? row.expires_at, key);
    return { ok: true, version };
  };
}

// better-sqlite3 ships no types and @types/better-sqlite3 is not a dependency: the calls used here, typed.
interface Statement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}
interface Transaction<F> {
  immediate: F;
}
interface Database {
  prepare(sql: string): Statement;
  pragma(sql: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): void;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F & Transaction<F>;
  close(): void;
}
type DatabaseConstructor = new (path: string, options?: { timeout?: number }) => Database;

interface Statements {
  get: Statement;
  bindUser: Statement;
  listByUser: Statement;
  destroyByUser: Statement;
  head: Statement;
  upsert: Statement;
  update: Statement;
  touch: Statement;
  destroy: Statement;
  sweep: Statement;
}
interface LiveRow {
  data: string;
  version: number;
  created_at: number;
  expires_at: number;
  user_id: string | null;
}
interface UserRow {
  key: string;
  created_at: number;
  expires_at: number;
}
interface HeadRow {
  data: string;
  version: number;
  created_at: number;
  expires_at: number;
  dead: number;
}

function loadDriver(): DatabaseConstructor {
  return requireDriver<DatabaseConstructor>('better-sqlite3', 'the sqlite: session store');
}
