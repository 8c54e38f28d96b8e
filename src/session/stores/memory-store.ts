import { applyPatch } from './apply-patch.ts';
import { destroyListed } from './destroy-listed.ts';
import type {
  PatchOptions,
  SessionPatch,
  StoreBackend,
  StoredSession,
  UserSession,
  WriteResult,
} from './store.ts';
import { storedSession } from './stored-session.ts';

/**
 * Sessions in this process's memory: for tests only (a clone must not keep user data; the URL switch refuses
 * `memory:` when NODE_ENV=production). Values are copied through JSON in and out, as a real store would.
 *
 * @example
 *   const store = new MemoryStore();
 */
export class MemoryStore implements StoreBackend {
  readonly kind = 'memory';
  readonly #rows = new Map<
    string,
    { json: string; version: number; createdAt: number; expiresAt: number; userId?: string }
  >();
  readonly #tombstones = new Map<string, number>();

  async get(key: string): Promise<StoredSession | null> {
    const row = this.#live(key);
    if (!row) return null;
    return storedSession(JSON.parse(row.json), row.version, row.createdAt, row.expiresAt, row.userId);
  }

  async create(key: string, session: StoredSession): Promise<WriteResult> {
    if (this.#dead(key)) return { ok: false, reason: 'gone' };
    if (this.#live(key)) return { ok: false, reason: 'conflict' };
    this.#rows.set(key, {
      json: JSON.stringify(session.data),
      version: session.version,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
    });
    return { ok: true, version: session.version };
  }

  async patch(key: string, patch: SessionPatch, options: PatchOptions = {}): Promise<WriteResult> {
    const row = this.#live(key);
    if (!row || this.#dead(key)) return { ok: false, reason: 'gone' };
    if (options.ifVersion !== undefined && options.ifVersion !== row.version) {
      const { version, createdAt, expiresAt } = row;
      return {
        ok: false,
        reason: 'conflict',
        current: { data: JSON.parse(row.json), version, createdAt, expiresAt },
      };
    }
    const data = applyPatch(JSON.parse(row.json), {
      set: JSON.parse(JSON.stringify(patch.set)),
      del: patch.del,
    });
    row.json = JSON.stringify(data);
    row.version += 1;
    if (options.expiresAt !== undefined) row.expiresAt = options.expiresAt;
    return { ok: true, version: row.version };
  }

  async touch(key: string, expiresAt: number): Promise<boolean> {
    const row = this.#live(key);
    if (!row) return false;
    row.expiresAt = expiresAt;
    return true;
  }

  async destroy(key: string, tombstoneUntil: number): Promise<void> {
    this.#rows.delete(key);
    this.#tombstones.set(key, tombstoneUntil);
  }

  async bindUser(key: string, userId: string): Promise<boolean> {
    const row = this.#live(key);
    if (!row || this.#dead(key)) return false;
    row.userId = userId;
    return true;
  }

  async listByUser(userId: string): Promise<UserSession[]> {
    const found: UserSession[] = [];
    for (const key of [...this.#rows.keys()]) {
      const row = this.#live(key);
      if (row?.userId === userId) found.push({ key, createdAt: row.createdAt, expiresAt: row.expiresAt });
    }
    return found;
  }

  async destroyByUser(
    userId: string,
    exceptKey: string | undefined,
    tombstoneUntil: number,
  ): Promise<number> {
    const destroy = async ({ key }: UserSession) => {
      await this.destroy(key, tombstoneUntil);
      return true;
    };
    return (await destroyListed(await this.listByUser(userId), exceptKey, destroy, 1)).length;
  }

  async close(): Promise<void> {}

  #live(key: string) {
    const row = this.#rows.get(key);
    if (row && row.expiresAt <= Date.now()) {
      this.#rows.delete(key);
      return undefined;
    }
    return row;
  }

  #dead(key: string): boolean {
    const until = this.#tombstones.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#tombstones.delete(key);
    return false;
  }
}
