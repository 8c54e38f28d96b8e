import type { RequestSession } from './request-session.ts';
import { type SessionCookie, sessionCookie } from './session-cookie.ts';
import type { SessionData } from './stores/store.ts';

/** express-session's callback: called once with the error, or with nothing. */
export type SessionCallback = (err?: unknown) => void;

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
  /**
   * New id; the old id is dead at once (call it at login). Keeps the data, unless `regenerateKeepsData: false`
   * (what `expressSession()` sets, as express-session starts an empty session). With a callback
   * (express-session's form) it returns the session and calls `cb(err)` when done.
   */
  regenerate(): Promise<void>;
  regenerate(cb: SessionCallback): Session<T>;
  /**
   * Records the logged-in user on the stored session, for `listByUser`/`destroyByUser` ("log me out
   * everywhere"); kept by `regenerate()`. Call it at login, after `regenerate()`.
   */
  bindUser(userId: string): Promise<void>;
  /** Ends the session for good (logout); in-flight requests cannot bring it back. */
  destroy(): Promise<void>;
  destroy(cb: SessionCallback): Session<T>;
  /** Keeps the session alive (throttled, TTL only). */
  touch(): Promise<void>;
  touch(cb: SessionCallback): Session<T>;
  /** Saves now instead of at the end of the response. */
  save(): Promise<void>;
  save(cb: SessionCallback): Session<T>;
  /** Drops this request's changes and reads the session again. */
  reload(): Promise<void>;
  reload(cb: SessionCallback): Session<T>;
  /** The session cookie as express-session shows it; `cookie.maxAge = ms` sets this session's own lifetime. */
  readonly cookie: SessionCookie;
  get<K extends keyof T & string>(key: K): T[K] | undefined;
  set<K extends keyof T & string>(key: K, value: T[K] | undefined): void;
  toJSON(): Partial<T>;
}

/**
 * Gives the session data its type in every framework at once (Express `req.session`, Fastify
 * `request.session`, Hono `c.get('session')`), as express-session's `SessionData` does:
 *
 * @example
 *   declare module 'clones/session' {
 *     interface SessionTypes { data: { userId: string; cart: string[] } }
 *   }
 */
// biome-ignore lint/suspicious/noEmptyInterface: an interface for apps to augment, empty until they do
export interface SessionTypes {}

/** The app's session data: `SessionTypes['data']` once augmented, else any JSON keys. */
export type AppSessionData = SessionTypes extends { data: infer D extends SessionData }
  ? D
  : // biome-ignore lint/suspicious/noExplicitAny: untyped sessions read like express-session's, any key goes
    Record<string, any>;

/** `req.session`: the user's typed data as properties, plus the session methods. */
export type Session<T extends SessionData = SessionData> = Partial<T> & SessionMethods<T>;

const METHODS = new Set([
  'id',
  'isNew',
  'cookie',
  'reload',
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
    regenerate: (cb?: SessionCallback) => settle(rs.regenerate(), cb, proxy),
    bindUser: (userId: string) => rs.bindUser(userId),
    destroy: (cb?: SessionCallback) => settle(rs.destroy(), cb, proxy),
    touch: (cb?: SessionCallback) => settle(rs.touch(), cb, proxy),
    save: (cb?: SessionCallback) => settle(rs.save(), cb, proxy),
    reload: (cb?: SessionCallback) => settle(rs.reload(), cb, proxy),
    cookie: sessionCookie(rs),
    get: (key: string) => rs.readKey(key),
    set: (key: string, value: unknown) => rs.writeKey(key, value),
    toJSON: () => Object.fromEntries(rs.keys().map((k) => [k, rs.readKey(k)])),
  };
  target[METHODS_OF] = methods;
  return methods;
}

/**
 * express-session's callback form next to the promise one: with a callback, the call returns the session and
 * the callback gets the error (never a rejected promise nobody awaits); without, the promise.
 */
function settle(done: Promise<void>, cb: SessionCallback | undefined, proxy: unknown): unknown {
  if (typeof cb !== 'function') return done;
  done.then(
    () => cb(),
    (err) => cb(err),
  );
  return proxy;
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
