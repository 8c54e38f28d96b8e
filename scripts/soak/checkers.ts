// The checkers: pure functions over a recorded history (history.ts), one per promise of DESIGN.md that a
// client can observe. Each returns the violations it found, each naming the op(s) that show it, so a failed
// soak says exactly which request broke which promise. Nothing here talks to a server.
import type { History, Op } from './history.ts';

export interface Violation {
  /** The op that shows the violation (its id), and why. */
  op: number;
  message: string;
}

export interface CheckResult {
  name: CheckerName;
  /** Ops the checker looked at (what it had evidence on). */
  checked: number;
  violations: Violation[];
  /** Lost updates inside a Redis failover window: counted apart with their size, not as violations. */
  inFailoverWindow?: Violation[];
}

export type CheckerName =
  | 'no-lost-update'
  | 'read-your-writes'
  | 'no-resurrected-session'
  | 'no-old-release'
  | 'coded-5xx'
  | 'bounded';

const ok = (op: Op) => op.status >= 200 && op.status < 400;
// Appends in place: a 10-minute history holds tens of thousands of ops per user (a copy per op was quadratic).
const byUser = (ops: Op[]) => {
  const users = new Map<string, Op[]>();
  for (const op of ops) {
    const list = users.get(op.user);
    if (list) list.push(op);
    else users.set(op.user, [op]);
  }
  return users;
};

/**
 * No acknowledged session update lost: a cart read holds at least every item the same session had added,
 * and acknowledged, before the read was sent. A missing add acknowledged inside a failover window
 * (`history.failovers`) is reported in `inFailoverWindow` instead, with its size.
 *
 * @example
 *   const r = noLostUpdate(history); // r.violations: [{ op: 12, message: 'cart lacks apple added by op 9 ...' }]
 */
export function noLostUpdate(history: History): CheckResult {
  const violations: Violation[] = [];
  const inWindow: Violation[] = [];
  let checked = 0;
  const inFailover = (t: number) => history.failovers.some((f) => t >= f.at - f.windowMs && t <= f.at);
  // Acknowledged adds by session: a read looks only at its own session's (a scan of the whole history per
  // read was quadratic).
  const addsBySid = new Map<string, Op[]>();
  for (const o of history.ops) {
    if (o.kind !== 'cart-add' || o.sid === undefined || !ok(o) || !o.item) continue;
    const list = addsBySid.get(o.sid);
    if (list) list.push(o);
    else addsBySid.set(o.sid, [o]);
  }
  for (const ops of byUser(history.ops).values()) {
    for (const read of ops) {
      if (read.kind !== 'cart-read' || !ok(read) || !read.cart || read.sid === undefined) continue;
      checked++;
      // Adds to the same session (by this user), acknowledged before this read began.
      const acked = (addsBySid.get(read.sid) ?? []).filter(
        (o) => o.user === read.user && o.end <= read.start,
      );
      const have = new Map<string, number>();
      for (const item of read.cart) have.set(item, (have.get(item) ?? 0) + 1);
      const need = new Map<string, Op[]>();
      for (const add of acked) need.set(add.item!, [...(need.get(add.item!) ?? []), add]);
      for (const [item, adds] of need) {
        const missing = adds.length - (have.get(item) ?? 0);
        if (missing <= 0) continue;
        // Which adds are lost cannot be told apart: blame the latest ones (the likeliest to be unreplicated).
        for (const add of adds.slice(-missing)) {
          const v = {
            op: read.id,
            message: `cart of ${read.user} lacks ${item} added by op ${add.id} (acknowledged at ${add.end}); read holds ${have.get(item) ?? 0} of ${adds.length}`,
          };
          (inFailover(add.end) ? inWindow : violations).push(v);
        }
      }
    }
  }
  return { name: 'no-lost-update', checked, violations, inFailoverWindow: inWindow };
}

/**
 * No read older than the same user's acknowledged write: a profile read returns at least the highest value
 * that user had written, and had acknowledged, before the read was sent (values increase per user).
 *
 * @example
 *   readYourWrites(history).violations; // [{ op: 7, message: 'read 2 after write 3 (op 5) was acknowledged' }]
 */
export function readYourWrites(history: History): CheckResult {
  const violations: Violation[] = [];
  let checked = 0;
  for (const ops of byUser(history.ops).values()) {
    // The user's acknowledged writes by acknowledgement time, each with the highest write acknowledged by
    // then: a read finds its bound by binary search (a scan per read was quadratic on a long soak).
    const writes = ops.filter((w) => w.kind === 'profile-write' && ok(w)).sort((a, b) => a.end - b.end);
    const best: Op[] = [];
    for (const w of writes) {
      const prev = best.at(-1);
      best.push(prev && (prev.value ?? 0) >= (w.value ?? 0) ? prev : w);
    }
    for (const read of ops) {
      if (read.kind !== 'profile-read' || !ok(read) || read.value === undefined) continue;
      checked++;
      // The number of writes acknowledged at or before the read's start.
      let lo = 0;
      let hi = writes.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (writes[mid]!.end <= read.start) lo = mid + 1;
        else hi = mid;
      }
      const last = lo > 0 ? best[lo - 1] : undefined;
      if (last && (read.value === null || read.value < (last.value ?? 0))) {
        violations.push({
          op: read.id,
          message: `${read.user} read ${read.value} after writing ${last.value} (op ${last.id}, acknowledged at ${last.end})`,
        });
      }
    }
  }
  return { name: 'read-your-writes', checked, violations };
}

/**
 * No logged-out session usable again: once a logout was acknowledged, no answer to a request sent later
 * with that session id says anyone is logged in.
 *
 * @example
 *   noResurrectedSession(history).violations; // [{ op: 30, message: 'session of bob ... logged in again' }]
 */
export function noResurrectedSession(history: History): CheckResult {
  const violations: Violation[] = [];
  const loggedOut = new Map<string, Op>();
  for (const op of history.ops) {
    if (op.kind === 'logout' && ok(op) && op.sid !== undefined) {
      const seen = loggedOut.get(op.sid);
      if (!seen || op.end < seen.end) loggedOut.set(op.sid, op);
    }
  }
  let checked = 0;
  for (const op of history.ops) {
    const out = op.sid === undefined ? undefined : loggedOut.get(op.sid);
    if (!out || op.start < out.end || op.id === out.id || op.authedAs === undefined || !ok(op)) continue;
    checked++;
    if (op.authedAs !== null) {
      violations.push({
        op: op.id,
        message: `session of ${out.user} answered as ${op.authedAs} after its logout (op ${out.id}, acknowledged at ${out.end})`,
      });
    }
  }
  return { name: 'no-resurrected-session', checked, violations };
}

/**
 * No old-release response after a deploy returned: an answer to a request sent after a deploy returned
 * comes from the release then current (the deploy's if it succeeded, the previous one if it failed), or from
 * the release of a deploy still running when the request was sent.
 *
 * @example
 *   noOldRelease(history).violations; // [{ op: 41, message: 'release aaa answered after deploy of bbb returned ...' }]
 */
export function noOldRelease(history: History): CheckResult {
  const violations: Violation[] = [];
  const deploys = [...history.deploys].sort((a, b) => a.end - b.end);
  let checked = 0;
  for (const op of history.ops) {
    if (!op.release || op.status === 0) continue;
    checked++;
    let current = history.initialRelease;
    let returned: number | undefined;
    for (const d of deploys) {
      if (d.end <= op.start && d.ok) {
        current = d.release;
        returned = d.end;
      }
    }
    const running = history.deploys
      .filter((d) => d.start <= op.end && d.end >= op.start)
      .map((d) => d.release);
    if (op.release !== current && !running.includes(op.release)) {
      violations.push({
        op: op.id,
        message: `release ${op.release.slice(0, 12)} answered ${op.kind} sent at ${op.start}; current was ${current.slice(0, 12)}${returned ? ` (deploy returned at ${returned})` : ''}`,
      });
    }
  }
  return { name: 'no-old-release', checked, violations };
}

/**
 * No 5xx without a documented code: every answer with status >= 500 carries `{ error: { code } }` with a
 * code listed in docs/errors.md (`codes`).
 *
 * @example
 *   codedErrors(history, new Set(['CLONES_BALANCER_NO_TARGET'])).violations;
 */
export function codedErrors(history: History, codes: ReadonlySet<string>): CheckResult {
  const violations: Violation[] = [];
  let checked = 0;
  for (const op of history.ops) {
    if (op.status < 500) continue;
    checked++;
    if (!op.code) violations.push({ op: op.id, message: `${op.status} without an error code (${op.kind})` });
    else if (!codes.has(op.code))
      violations.push({ op: op.id, message: `${op.status} with undocumented code ${op.code} (${op.kind})` });
  }
  return { name: 'coded-5xx', checked, violations };
}

/**
 * Every request answered or timed out within its bound: no op took longer than `timeoutMs + slackMs`
 * (the client's timeout, plus the slack of a loaded machine's timers), and none was left without an end.
 *
 * @example
 *   bounded(history, 500).violations; // [{ op: 3, message: 'took 12000 ms (bound 10000 ms)' }]
 */
export function bounded(history: History, slackMs = 1000): CheckResult {
  const violations: Violation[] = [];
  for (const op of history.ops) {
    if (!Number.isFinite(op.end) || op.end < op.start) {
      violations.push({ op: op.id, message: `${op.kind} never ended` });
    } else if (op.end - op.start > history.timeoutMs + slackMs) {
      violations.push({
        op: op.id,
        message: `${op.kind} took ${op.end - op.start} ms (bound ${history.timeoutMs} ms)`,
      });
    }
  }
  return { name: 'bounded', checked: history.ops.length, violations };
}

/**
 * Runs every checker.
 *
 * @example
 *   const results = checkAll(history, documentedCodes(readFileSync('docs/errors.md', 'utf8')));
 *   const passed = results.every((r) => r.violations.length === 0);
 */
export function checkAll(history: History, codes: ReadonlySet<string>): CheckResult[] {
  return [
    noLostUpdate(history),
    readYourWrites(history),
    noResurrectedSession(history),
    noOldRelease(history),
    codedErrors(history, codes),
    bounded(history),
  ];
}

/**
 * The error codes docs/errors.md documents: the first cell of every table row that is a `CLONES_...` code.
 *
 * @example
 *   documentedCodes('| `CLONES_X` | 500 | ... |').has('CLONES_X'); // true
 */
export function documentedCodes(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]!));
}
