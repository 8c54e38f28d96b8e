// Simulated users, each with its own cookie jar, against the shop through the balancer. A user logs in, then
// in rounds adds two items to the cart at once (two concurrent `update`s of one session), reads the cart,
// writes a profile note (through db.for(session)) and reads it back on the next request; then logs out and
// tries the old cookie. Every request goes into the history with the client's clock.
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Op, OpKind } from './history.ts';

const ITEMS = ['apple', 'bread', 'cheese', 'dates'];
const SID = 'clones.sid';

export interface WorkloadOptions {
  port: number;
  users: number;
  /** The client's bound for one request. */
  timeoutMs: number;
  /** Stop sending at `until.at` (client clock; it may move while the users run), or after `maxOps` requests. */
  until: { at: number };
  maxOps: number;
  random: () => number;
}

/**
 * Runs the users until `until` (or `maxOps`) and resolves with every op, in the order they ended.
 *
 * @example
 *   const ops = await runWorkload({ port, users: 6, timeoutMs: 10_000, until: { at: Date.now() + 60_000 }, maxOps: 1e5, random });
 */
export async function runWorkload(options: WorkloadOptions, ops: Op[] = []): Promise<Op[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.users * 2 });
  let next = 0;
  const done = () => Date.now() >= options.until.at || next >= options.maxOps;
  const profiles = new Map<string, number>();

  const send = async (
    user: string,
    jar: Map<string, string>,
    kind: OpKind,
    method: string,
    path: string,
    form?: Record<string, string>,
  ): Promise<{ op: Op; json: Record<string, unknown> | undefined }> => {
    const op: Op = { id: ++next, user, kind, start: Date.now(), end: Number.NaN, status: 0 };
    const sid = jar.get(SID);
    if (sid !== undefined) op.sid = sid;
    const body = form ? new URLSearchParams(form).toString() : undefined;
    let json: Record<string, unknown> | undefined;
    try {
      const res = await new Promise<{ status: number; headers: Record<string, unknown>; text: string }>(
        (resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port: options.port,
              method,
              path,
              agent,
              timeout: options.timeoutMs,
              headers: {
                ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
                ...(body !== undefined
                  ? {
                      'content-type': 'application/x-www-form-urlencoded',
                      'content-length': Buffer.byteLength(body),
                    }
                  : {}),
              },
            },
            (r) => {
              let text = '';
              r.setEncoding('utf8');
              r.on('data', (c) => (text += c));
              r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, text }));
              r.on('error', reject);
            },
          );
          // The bound covers the whole exchange, not only idle time between packets.
          const timer = setTimeout(
            () => req.destroy(Object.assign(new Error('client timeout'), { timedOut: true })),
            options.timeoutMs,
          );
          req.once('close', () => clearTimeout(timer));
          req.on('timeout', () =>
            req.destroy(Object.assign(new Error('client timeout'), { timedOut: true })),
          );
          req.on('error', reject);
          req.end(body);
        },
      );
      op.status = res.status;
      const release = res.headers['x-clones-release'];
      const clone = res.headers['x-clones-clone'];
      if (typeof release === 'string') op.release = release;
      if (typeof clone === 'string') op.clone = clone;
      for (const c of (res.headers['set-cookie'] as string[] | undefined) ?? []) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) jar.delete(name);
        else jar.set(name, value);
      }
      if (String(res.headers['content-type'] ?? '').includes('json')) {
        try {
          json = JSON.parse(res.text) as Record<string, unknown>;
          const code = (json.error as { code?: unknown } | undefined)?.code;
          if (typeof code === 'string') op.code = code;
        } catch {
          // Not JSON after all: the coded-5xx checker sees no code.
        }
      }
    } catch (err) {
      op.error = (err as Error).message;
      if ((err as { timedOut?: boolean }).timedOut) op.timedOut = true;
    }
    op.end = Date.now();
    ops.push(op);
    return { op, json };
  };

  const user = async (u: number) => {
    while (!done()) {
      const name = `u${u}`;
      const jar = new Map<string, string>();
      const login = await send(name, jar, 'login', 'POST', '/login', { name });
      if (login.op.status !== 303 || !jar.get(SID)) {
        await sleep(200);
        continue;
      }
      for (let round = 0; round < 4 && !done(); round++) {
        const pick = () => ITEMS[Math.floor(options.random() * ITEMS.length)]!;
        const [a, b] = [pick(), pick()];
        await Promise.all(
          [a, b].map(async (item) => {
            const r = await send(name, jar, 'cart-add', 'POST', '/cart', { item });
            r.op.item = item;
          }),
        );
        const read = await send(name, jar, 'cart-read', 'GET', '/api/session');
        if (read.json && read.op.status === 200) {
          read.op.cart = (read.json.cart as string[] | undefined) ?? [];
          read.op.authedAs = (read.json.user as string | undefined) ?? null;
        }
        const value = (profiles.get(name) ?? 0) + 1;
        profiles.set(name, value);
        const w = await send(name, jar, 'profile-write', 'POST', '/profile', { note: String(value) });
        w.op.value = value;
        const p = await send(name, jar, 'profile-read', 'GET', '/api/profile');
        if (p.json && p.op.status === 200) {
          p.op.value = p.json.note === null || p.json.note === undefined ? null : Number(p.json.note);
          p.op.authedAs = (p.json.user as string | undefined) ?? null;
        }
        await sleep(20 + options.random() * 60);
      }
      const old = new Map(jar);
      await send(name, jar, 'logout', 'POST', '/logout');
      const again = await send(name, old, 'old-cookie', 'GET', '/api/session');
      if (again.json && again.op.status === 200)
        again.op.authedAs = (again.json.user as string | undefined) ?? null;
    }
  };
  await Promise.all(Array.from({ length: options.users }, (_, i) => user(i + 1)));
  agent.destroy();
  return ops;
}
