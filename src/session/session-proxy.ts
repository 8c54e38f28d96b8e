import type { RequestSession } from './request-session.ts';
import type { SessionData } from './stores/store.ts';

/** The methods every `req.session` has next to the user's data; these names cannot be used as data keys. */
export interface SessionMethods<T extends SessionData = SessionData> {
  /** The session id (undefined until the session is first saved or read from a cookie). */
  readonly id: string | undefined;
  /** True until the session exists in its store. */
  readonly isNew: boolean;
  /** Reads the session (one store read; later calls are free). Data reads before this throw, unless eager. */
  load(): Promise<Session<T>>;
  /** Atomic read-modify-write of the stored data: `fn` runs on a fresh copy and is retried on conflicts. */
  update<R>(fn: (draft: Partial<T>) => R | Promise<R>): Promise<Awaited<R>>;
  /** New id, same data; the old id is dead at once (call it at login). */
  regenerate(): Promise<void>;
  /** Ends the session for good (logout); in-flight requests cannot bring it back. */
  destroy(): Promise<void>;
  /** Keeps the session alive (throttled, TTL only). */
  touch(): Promise<void>;
  /** Saves now instead of at the end of the response. */
  save(): Promise<void>;
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  set<K extends keyof T & string>(key: K, value: T[K] | undefined): void;
  toJSON(): Partial<T>;
}

/** `req.session`: the user's typed data as properties, plus the session methods. */
export type Session<T extends SessionData = SessionData> = Partial<T> & SessionMethods<T>;

const METHODS = new Set([
  'id',
  'isNew',
  'load',
  'update',
  'regenerate',
  'destroy',
  'touch',
  'save',
  'get',
  'set',
  'toJSON',
  // Not a data key: `await req.session` must see no thenable (reads as undefined).
  'then',
]);

/** Builds the `req.session` object for one request: property reads and writes go to the change tracker. */
export function sessionProxy<T extends SessionData>(rs: RequestSession): Session<T> {
  const methods: Record<string, unknown> = {
    load: async () => {
      await rs.load();
      return proxy;
    },
    update: (fn: (draft: SessionData) => unknown) => rs.update(fn),
    regenerate: () => rs.regenerate(),
    destroy: () => rs.destroy(),
    touch: () => rs.touch(),
    save: () => rs.save(),
    get: (key: string) => rs.readKey(key),
    set: (key: string, value: unknown) => rs.writeKey(key, value),
    toJSON: () => Object.fromEntries(rs.keys().map((k) => [k, rs.readKey(k)])),
  };
  const proxy: Session<T> = new Proxy(Object.create(null), {
    get(_target, prop) {
      if (typeof prop !== 'string') return undefined;
      if (prop === 'id') return rs.id;
      if (prop === 'isNew') return rs.isNew;
      if (METHODS.has(prop)) return methods[prop];
      return rs.readKey(prop);
    },
    set(_target, prop, value) {
      if (typeof prop !== 'string' || METHODS.has(prop)) return false;
      rs.writeKey(prop, value);
      return true;
    },
    deleteProperty(_target, prop) {
      if (typeof prop !== 'string' || METHODS.has(prop)) return false;
      rs.removeKey(prop);
      return true;
    },
    has(_target, prop) {
      if (typeof prop !== 'string') return false;
      if (METHODS.has(prop)) return true;
      return rs.keys().includes(prop);
    },
    ownKeys() {
      return rs.keys();
    },
    getOwnPropertyDescriptor(_target, prop) {
      if (typeof prop !== 'string' || METHODS.has(prop) || !rs.keys().includes(prop)) return undefined;
      return { value: rs.readKey(prop), writable: true, enumerable: true, configurable: true };
    },
  });
  return proxy;
}
