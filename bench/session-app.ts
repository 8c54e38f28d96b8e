// The app the session benchmark drives, one child process per configuration (BENCH_CONFIG):
//   none              no session middleware at all
//   clones            clones/session on SESSION_STORE (redis://, sqlite:, cookie:), with `eager: true`
//   express-session   express-session 1.19 + connect-redis 9 (node-redis client) on BENCH_REDIS_URL
//   redis-floor       no session library: one ioredis HMGET of a fixed hash per request (the same command and
//                     client settings the Redis store's read uses), i.e. the cost of one round trip alone
// Routes: POST /prime (starts a session: user + n = 0), GET /read (reads one key), POST /write (writes one key,
// a new value every time so every request is a real write), POST /update (adds one to a counter), GET /count.
// clones/session runs with `eager: true`, so the route code reads and writes `req.session.x` exactly as with
// express-session; only /update differs: clones has the atomic `update(fn)`, express-session has none and
// does the read-modify-write on its copy.
// Prints "listening <port>" on stdout; SIGTERM stops it.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RedisStore } from 'connect-redis';
import express from 'express';
import expressSession from 'express-session';
import { createClient } from 'redis';
import { sessions } from '../src/session/index.ts';

type Data = { user?: string; n?: number; w?: number };
type AnySession = Partial<Data> & { update?(fn: (d: Partial<Data>) => void): Promise<void> };

const config = process.env.BENCH_CONFIG ?? 'none';
const secret = 'bench-secret-that-is-at-least-32-bytes-long!';
const app = express();
app.disable('x-powered-by');
app.disable('etag');
const closers: Array<() => Promise<unknown>> = [];
let writes = 0;
/** `req.session` of any configuration (an empty object without a session). */
const session = (req: unknown): AnySession => (req as { session?: AnySession }).session ?? {};

if (config === 'clones') {
  const s = sessions<Data>({ secret, store: process.env.SESSION_STORE, eager: true });
  app.use(s.express());
  closers.push(() => s.close());
  app.post('/update', async (req, res) => {
    await session(req).update!((d) => {
      d.n = (d.n ?? 0) + 1;
    });
    res.json({ ok: true });
  });
} else if (config === 'express-session') {
  const client = createClient({ url: process.env.BENCH_REDIS_URL });
  await client.connect();
  closers.push(() => client.quit());
  const store = new RedisStore({ client, prefix: 'bench:' });
  app.use(expressSession({ store, secret, resave: false, saveUninitialized: false }));
  app.post('/update', (req, res) => {
    const s = session(req);
    s.n = (s.n || 0) + 1;
    res.json({ ok: true });
  });
} else if (config === 'redis-floor') {
  const { Redis } = await import('ioredis');
  const redis = new Redis(process.env.BENCH_REDIS_URL!, { enableAutoPipelining: true });
  closers.push(() => redis.quit());
  await redis.hset('bench:floor', {
    v: '1',
    c: '0',
    e: String(Date.now() + 864e5),
    j: '{"user":"ada","n":0}',
  });
  app.use(async (req, _res, next) => {
    const [, , , j] = await redis.hmget('bench:floor', 'v', 'c', 'e', 'j', 'u');
    (req as { session?: AnySession }).session = JSON.parse(j!);
    next();
  });
  app.post('/update', (_req, res) => {
    res.json({ ok: true });
  });
} else if (config === 'none') {
  app.post('/update', (_req, res) => {
    res.json({ ok: true });
  });
} else {
  throw new Error(`unknown BENCH_CONFIG ${config}`);
}

app.post('/prime', (req, res) => {
  const s = session(req);
  s.user = 'ada';
  s.n = 0;
  res.json({ ok: true });
});
app.get('/read', (req, res) => {
  res.json({ user: session(req).user ?? null });
});
app.post('/write', (req, res) => {
  session(req).w = ++writes;
  res.json({ ok: true });
});
app.get('/count', (req, res) => {
  res.json({ n: session(req).n ?? null });
});

const server: Server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => {
  server.close(() => {
    Promise.all(closers.map((close) => close())).finally(() => process.exit(0));
  });
  server.closeAllConnections();
});
