import { CookieSigner, readCookie } from './cookie-signer.ts';
import type { ResolvedOptions } from './options.ts';
import type { Picker } from './pick/picker.ts';
import type { Target } from './target.ts';
import type { TargetSet } from './target-set.ts';

/** Per-request routing state, kept across retries. */
export interface RouteState {
  group: string | undefined;
  groupCookie: string | undefined;
  tried: Target[];
}

export interface Route {
  target: Target;
  /** Set-Cookie values to send with the response (sticky cookies, re-issued so their expiry slides). */
  cookies: string[] | undefined;
}

/**
 * Chooses the target for a request: first the group (sticky to the group a client was given, else by group
 * weight), then the target inside it (sticky cookie, app-cookie hash, or the load-balancing picker).
 * A sticky client whose group or target can no longer serve is re-pinned at once, never refused.
 *
 * @example
 *   const router = new Router(options, targetSet, createPicker('least-outstanding'));
 *   const route = router.route(req.headers.cookie, { group: undefined, groupCookie: undefined, tried: [] }, false);
 */
export class Router {
  readonly #options: ResolvedOptions;
  readonly #set: TargetSet;
  readonly #picker: Picker;
  readonly #signer: CookieSigner;
  #groupDuration: number;

  constructor(options: ResolvedOptions, set: TargetSet, picker: Picker) {
    this.#options = options;
    this.#groupDuration = options.groupStickiness.duration;
    this.#set = set;
    this.#picker = picker;
    this.#signer = new CookieSigner(options.secret);
    const names: string[] = [];
    if (options.groupStickiness.enabled) names.push(options.groupStickiness.cookie);
    if (options.sticky.enabled && options.sticky.mode === 'balancer') names.push(options.sticky.cookie);
    this.ownCookies = Object.freeze(names);
  }

  /** The cookie names the balancer owns; they are removed before a request reaches a clone. */
  readonly ownCookies: readonly string[];

  /** How long a client keeps its group, in ms: the option, or what a deploy set (checked by the caller). */
  get groupStickinessDuration(): number {
    return this.#groupDuration;
  }

  set groupStickinessDuration(ms: number | undefined) {
    this.#groupDuration = ms ?? this.#options.groupStickiness.duration;
  }

  /** `cookie` is the request's Cookie header. */
  route(cookie: string | undefined, state: RouteState, secure: boolean): Route | undefined {
    const now = Date.now();
    const set = this.#set;
    if (state.group === undefined) {
      const gs = this.#options.groupStickiness;
      if (gs.enabled && set.groupWeights.size > 1) {
        const pinned = this.#verified(cookie, gs.cookie, now);
        state.group = pinned !== undefined && set.canKeep(pinned, now) ? pinned : set.pickGroup(now);
        if (state.group !== undefined) {
          state.groupCookie = setCookie(
            gs.cookie,
            this.#signer.sign(state.group, now + this.#groupDuration),
            this.#groupDuration,
            secure,
          );
        }
      } else {
        state.group = set.pickGroup(now);
      }
      if (state.group === undefined) return undefined;
    }

    let candidates: readonly Target[] = set.candidates(state.group, now);
    if (state.tried.length > 0) {
      let fresh = candidates.filter((t) => !state.tried.includes(t));
      if (fresh.length === 0) {
        const other = set.pickGroup(now, state.group);
        if (other !== undefined) fresh = set.candidates(other, now).filter((t) => !state.tried.includes(t));
      }
      if (fresh.length > 0) candidates = fresh;
    }
    if (candidates.length === 0) return undefined;

    const sticky = this.#options.sticky;
    let target: Target | undefined;
    let targetCookie: string | undefined;
    if (sticky.enabled && sticky.mode === 'balancer') {
      const pinned = this.#verified(cookie, sticky.cookie, now);
      if (pinned !== undefined) target = candidates.find((t) => t.id === pinned);
      target ??= this.#picker.pick(candidates);
      targetCookie = setCookie(
        sticky.cookie,
        this.#signer.sign(target.id, now + sticky.duration),
        sticky.duration,
        secure,
      );
    } else if (sticky.enabled) {
      const key = readCookie(cookie, sticky.appCookie);
      target = key === undefined ? this.#picker.pick(candidates) : rendezvous(candidates, key);
    } else {
      target = this.#picker.pick(candidates);
    }

    let cookies: string[] | undefined;
    if (state.groupCookie !== undefined) cookies = [state.groupCookie];
    if (targetCookie !== undefined) cookies = cookies ? [...cookies, targetCookie] : [targetCookie];
    return { target, cookies };
  }

  #verified(header: string | undefined, name: string, now: number): string | undefined {
    const raw = readCookie(header, name);
    return raw === undefined ? undefined : this.#signer.verify(raw, now);
  }
}

function setCookie(name: string, value: string, durationMs: number, secure: boolean): string {
  return `${name}=${value}; Max-Age=${Math.floor(durationMs / 1000)}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/**
 * Highest-random-weight hashing: the same app cookie lands on the same target, and when a target leaves
 * only its own clients move.
 */
function rendezvous(candidates: readonly Target[], key: string): Target {
  let best = candidates[0]!;
  let bestScore = -1;
  for (const t of candidates) {
    const score = fnv1a(`${t.id}\u0000${key}`);
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche: plain FNV scores of near-identical strings are too close to spread well.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
