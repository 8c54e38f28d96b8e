import { randomBytes } from 'node:crypto';

/** One entry of the log: an id (`<boot>.<seq>`) and what the page is sent. */
export interface LoggedEvent {
  id: string;
  data: unknown;
}

/**
 * The recent fleet events, numbered, so an event stream that reconnects with `Last-Event-ID` gets what it
 * missed. Ids carry this process's boot id: an id from before a fleet restart is not resumed (the page gets
 * a fresh snapshot instead).
 *
 * @example
 *   const log = new EventLog(500);
 *   log.subscribe((e) => send(e));
 *   log.push({ type: 'clone', clone: 'c1', state: 'serving' });
 *   log.since('x1b2.41'); // [] when the id is from another boot or too old
 */
export class EventLog {
  readonly boot = randomBytes(4).toString('hex');
  readonly #size: number;
  #seq = 0;
  #entries: LoggedEvent[] = [];
  readonly #subscribers = new Set<(e: LoggedEvent) => void>();

  constructor(size: number) {
    this.#size = size;
  }

  push(data: unknown): LoggedEvent {
    const entry = { id: `${this.boot}.${++this.#seq}`, data };
    this.#entries.push(entry);
    if (this.#entries.length > this.#size) this.#entries.splice(0, this.#entries.length - this.#size);
    for (const s of this.#subscribers) s(entry);
    return entry;
  }

  /** The entries after `lastId`, or undefined when they cannot be known (another boot, or rotated out). */
  since(lastId: string | undefined): LoggedEvent[] | undefined {
    if (!lastId) return undefined;
    const [boot, seq] = lastId.split('.');
    const n = Number(seq);
    if (boot !== this.boot || !Number.isInteger(n)) return undefined;
    const first = this.#entries[0];
    if (first && Number(first.id.split('.')[1]) > n + 1) return undefined;
    return this.#entries.filter((e) => Number(e.id.split('.')[1]) > n);
  }

  /** The last `n` entries. */
  recent(n: number): LoggedEvent[] {
    return this.#entries.slice(-n);
  }

  subscribe(listener: (e: LoggedEvent) => void): () => void {
    this.#subscribers.add(listener);
    return () => this.#subscribers.delete(listener);
  }
}
