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
  /**
   * Records the logged-in user on the stored session, for `listByUser`/`destroyByUser` ("log me out
   * everywhere"); kept by `regenerate()`. Call it at login, after `regenerate()`.
   */
  bindUser(userId: string): Promise<void>;
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
  'bindUser',
  'destroy',
  'touch',
  'save',
  'get',
  'set',
  'toJSON',
  // Not a data key: `await req.session` must see no thenable (reads as undefined).
  'then',
]);

const RS = Symbol('clones.requestSession');
const METHODS_OF = Symbol('clones.sessionMethods');

/** The proxy's target: it holds the request's session; the data itself never lives on it. */
interface Target {
  [RS]: RequestSession;
  [METHODS_OF]?: Record<string, unknown>;
}

/**
 * The methods of one session, built on first use: most requests only read or write data, and a route that
 * never calls a method should not pay for ten closures.
 */
function methodsOf(target: Target, proxy: unknown): Record<string, unknown> {
  const existing = target[METHODS_OF];
  if (existing) return existing;
  const rs = target[RS];
  const methods: Record<string, unknown> = {
    load: async () => {
      await rs.load();
      return proxy;
    },
    update: (fn: (draft: SessionData) => unknown) => rs.update(fn),
    regenerate: () => rs.regenerate(),
    bindUser: (userId: string) => rs.bindUser(userId),
    destroy: () => rs.destroy(),
    touch: () => rs.touch(),
    save: () => rs.save(),
    get: (key: string) => rs.readKey(key),
    set: (key: string, value: unknown) => rs.writeKey(key, value),
    toJSON: () => Object.fromEntries(rs.keys().map((k) => [k, rs.readKey(k)])),
  };
  target[METHODS_OF] = methods;
  return methods;
}

/** One handler for every session (the request's session is on the target), so a request allocates no traps. */
const handler: ProxyHandler<Target> = {
  get(target, prop, receiver) {
    if (typeof prop !== 'string') return undefined;
    const rs = target[RS];
    if (prop === 'id') return rs.id;
    if (prop === 'isNew') return rs.isNew;
    if (METHODS.has(prop)) return methodsOf(target, receiver)[prop];
    return rs.readKey(prop);
  },
  set(target, prop, value) {
    if (typeof prop !== 'string' || METHODS.has(prop)) return false;
    target[RS].writeKey(prop, value);
    return true;
  },
  deleteProperty(target, prop) {
    if (typeof prop !== 'string' || METHODS.has(prop)) return false;
    target[RS].removeKey(prop);
    return true;
  },
  has(target, prop) {
    if (typeof prop !== 'string') return false;
    if (METHODS.has(prop)) return true;
    return target[RS].keys().includes(prop);
  },
  ownKeys(target) {
    return target[RS].keys();
  },
  getOwnPropertyDescriptor(target, prop) {
    const rs = target[RS];
    if (typeof prop !== 'string' || METHODS.has(prop) || !rs.keys().includes(prop)) return undefined;
    return { value: rs.readKey(prop), writable: true, enumerable: true, configurable: true };
  },
};

/** Builds the `req.session` object for one request: property reads and writes go to the change tracker. */
export function sessionProxy<T extends SessionData>(rs: RequestSession): Session<T> {
  const target = Object.create(null) as Target;
  // Symbol-keyed and configurable: `ownKeys` may leave it out, so the data's keys are all a caller sees.
  target[RS] = rs;
  return new Proxy(target, handler) as unknown as Session<T>;
}
