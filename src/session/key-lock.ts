import type { StoredSession } from './stores/store.ts';

interface Entry {
  tail: Promise<void>;
  waiters: number;
  /** The newest record written under this lock, so the next waiter starts from it instead of re-reading. */
  last: StoredSession | undefined;
}

/**
 * Serialises `update(fn)` calls on one session inside this process. Across clones, compare-and-set in the store
 * is what keeps updates atomic; the lock only spares concurrent requests in one clone from losing that race
 * to each other and retrying.
 *
 * @example
 *   await locks.run(key, async (entry) => { ... entry.last = written; });
 */
export class KeyLock {
  readonly #entries = new Map<string, Entry>();

  async run<R>(key: string, fn: (entry: Entry) => Promise<R>): Promise<R> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { tail: Promise.resolve(), waiters: 0, last: undefined };
      this.#entries.set(key, entry);
    }
    entry.waiters += 1;
    const previous = entry.tail;
    let release!: () => void;
    entry.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn(entry);
    } finally {
      entry.waiters -= 1;
      if (entry.waiters === 0) this.#entries.delete(key);
      release();
    }
  }
}
