/** What a cache answers to "give me this key, or the right to fill it". */
export type LeaseAnswer =
  /** The entry, with the WAL position it was read or written at. */
  | { kind: 'hit'; data: string; lsn: number }
  /** No entry: the caller holds the lease and must fill. `writeLsn`: the key's last write, to read at least. */
  | { kind: 'lease'; writeLsn: number }
  /** No entry, and someone else holds the lease: look again shortly. */
  | { kind: 'busy'; writeLsn: number };

/**
 * The shared cache behind `cached()` and `write()`: a small interface so a backend stays a handful of atomic
 * operations (one file per backend; redis-cache.ts). Values are opaque strings (JSON).
 *
 * @example
 *   const answer = await cache.lookup('product:1', token, 4000);
 *   if (answer.kind === 'lease') await cache.fill('product:1', token, json, lsn, 60_000);
 */
export interface Cache {
  /** The entry, or the lease (set only if nobody holds it), in one atomic step. */
  lookup(key: string, token: string, leaseMs: number): Promise<LeaseAnswer>;
  /**
   * Stores a fill, only if `token` still holds the lease (a write since then drops it) and `lsn` is not older
   * than the key's last write. Answers whether it was stored; the lease is released either way.
   */
  fill(key: string, token: string, data: string, lsn: number, ttlMs: number): Promise<boolean>;
  /**
   * After a write committed at `lsn`: remembers `lsn` as the key's last write, drops any lease (a fill in
   * flight read older data), then stores `data` if no newer write got there first, or deletes the entry.
   * `before`: the position read inside the write's transaction, before COMMIT; a write that overlapped one
   * already recorded (`before` not past its position) deletes rather than stores: their order is unknown.
   */
  written(key: string, lsn: number, data: string | undefined, ttlMs: number, before: number): Promise<void>;
  close(): Promise<void>;
}
