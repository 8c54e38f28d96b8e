import { notSerializable } from '../errors.ts';
import { setOwn } from './stores/apply-patch.ts';
import type { SessionData, SessionPatch } from './stores/store.ts';

/**
 * The session data one request sees, and which top-level keys it changed. Assignments are tracked by the
 * proxy; in-place changes to nested objects (`session.cart.push(x)`) are found at save time by comparing the
 * JSON of every object value handed out against its JSON when it was handed out.
 *
 * @example
 *   const t = new ChangeTracker({ a: 1 });
 *   t.write('b', 2);
 *   t.patch(); // { set: { b: 2 }, del: [] }
 */
export class ChangeTracker {
  data: SessionData;
  readonly #changed = new Set<string>();
  readonly #snapshots = new Map<string, string>();

  constructor(data: SessionData = {}) {
    this.data = data;
  }

  read(key: string): unknown {
    // Only own keys are data: `session.toString` or `session.constructor` are not in the session.
    const value = Object.hasOwn(this.data, key) ? this.data[key] : undefined;
    if (typeof value === 'object' && value !== null && !this.#changed.has(key) && !this.#snapshots.has(key)) {
      this.#snapshots.set(key, JSON.stringify(value));
    }
    return value;
  }

  write(key: string, value: unknown): void {
    if (value === undefined) {
      this.remove(key);
      return;
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      throw notSerializable(key, (err as Error).message);
    }
    if (json === undefined) throw notSerializable(key, `a ${typeof value} is not JSON`);
    setOwn(this.data, key, value);
    this.#changed.add(key);
    this.#snapshots.delete(key);
  }

  remove(key: string): void {
    if (!Object.hasOwn(this.data, key)) return;
    delete this.data[key];
    this.#changed.add(key);
    this.#snapshots.delete(key);
  }

  /** True when anything changed, nested changes included. */
  get dirty(): boolean {
    this.#collectNested();
    return this.#changed.size > 0;
  }

  /** This request's changes as a patch for the store. */
  patch(): SessionPatch {
    this.#collectNested();
    const set: SessionData = {};
    const del: string[] = [];
    for (const key of this.#changed) {
      if (Object.hasOwn(this.data, key)) setOwn(set, key, this.data[key]);
      else del.push(key);
    }
    return { set, del };
  }

  /** Lays this request's pending changes over `base` (the latest stored data) and returns the result. */
  overlay(base: SessionData): SessionData {
    const merged: SessionData = structuredClone(base);
    const { set, del } = this.patch();
    for (const key of del) delete merged[key];
    for (const key of Object.keys(set)) setOwn(merged, key, structuredClone(set[key]));
    return merged;
  }

  /** Takes `data` as the stored state: nothing is pending any more. */
  reset(data: SessionData): void {
    this.data = data;
    this.#changed.clear();
    this.#snapshots.clear();
  }

  #collectNested(): void {
    if (this.#snapshots.size === 0) return;
    for (const [key, json] of this.#snapshots) {
      if (JSON.stringify(this.data[key]) === json) continue;
      this.#changed.add(key);
      this.#snapshots.delete(key);
    }
  }
}

/** The patch that turns `before` into `after`, comparing top-level keys by their JSON. */
export function diff(before: SessionData, after: SessionData): SessionPatch {
  const set: SessionData = {};
  const del: string[] = [];
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) del.push(key);
  for (const [key, value] of Object.entries(after)) {
    if (value === undefined) {
      if (Object.hasOwn(before, key)) del.push(key);
      continue;
    }
    if (!Object.hasOwn(before, key) || JSON.stringify(before[key]) !== JSON.stringify(value))
      setOwn(set, key, value);
  }
  return { set, del };
}
