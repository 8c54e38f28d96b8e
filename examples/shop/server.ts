// The example app: a tiny shop whose every bit of user state lives in clones/session, and whose products
// and orders live in clones/data, so any clone can serve any request. Run as clones by `npm start`
// (clones up examples/shop), or alone:
//   SESSION_SECRET=$(openssl rand -base64 32) PORT=3000 node --import tsx examples/shop/server.ts
// Data: SQLite next to the sessions file by default (nothing to install); set DATABASE_URL=postgres://...,
// DATABASE_REPLICA_URLS=postgres://...,postgres://... and CACHE_URL=redis://... for a primary with replicas
// and a shared cache: same code.
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { database, type Reader } from 'clones/data';
import { sessions } from 'clones/session';
import { type Order, type Product, page } from './page.ts';

type Shop = { user: string; counter: number; cart: string[] };

const clone = process.env.CLONES_CLONE_ID ?? 'solo';
const release = process.env.CLONES_RELEASE ?? 'dev';
const s = sessions<Shop>({ eager: true });
// Clones run from their read-only release directory: keep the data next to the sessions file when that is
// SQLite, else in clones/data's default, which is the data directory the fleet gives (CLONES_DATA_DIR).
const sessionFile = /^sqlite:(.+)$/.exec(process.env.SESSION_STORE ?? '')?.[1];
const db = database(
  sessionFile && !process.env.DATABASE_URL
    ? { primary: `sqlite:${join(dirname(sessionFile), 'data.db')}` }
    : {},
);
const SEED: [string, string, number][] = [
  ['apple', 'Apple', 50],
  ['bread', 'Bread', 250],
  ['cheese', 'Cheese', 700],
  ['dates', 'Dates', 400],
];

/** Tables and the four products; every clone runs it at start, so it must be idempotent and race-safe. */
async function migrate(): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.transaction(async (tx) => {
        await tx.query(
          'CREATE TABLE IF NOT EXISTS products (id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL, stock INTEGER NOT NULL)',
        );
        await tx.query(
          'CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, items TEXT NOT NULL, total_cents INTEGER NOT NULL, created_at TEXT NOT NULL)',
        );
        await tx.query(
          'CREATE TABLE IF NOT EXISTS profiles (user_name TEXT PRIMARY KEY, note TEXT NOT NULL)',
        );
        for (const [id, name, price] of SEED) {
          await tx.query(
            'INSERT INTO products (id, name, price_cents, stock) VALUES ($1, $2, $3, 100) ON CONFLICT (id) DO NOTHING',
            [id, name, price],
          );
        }
      });
      return;
    } catch (err) {
      // Two clones creating the same PostgreSQL table at once: one loses with a unique violation; try again.
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

const loadProducts = async (r: Reader) =>
  r.query<Product>('SELECT id, name, price_cents, stock FROM products ORDER BY id');

const server = createServer(
  s.node(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://shop');
    res.setHeader('x-shop-clone', clone);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /up') return send(res, 200, 'text/plain', 'ok');
    if (route === 'GET /api/session') {
      const { user, counter, cart } = req.session;
      return send(res, 200, 'application/json', JSON.stringify({ clone, release, user, counter, cart }));
    }
    // Reads see this user's own writes (their orders) whichever clone made them: the position rides in the session.
    const data = db.for(req.session);
    const products = await data.cached('products', 30_000, loadProducts);
    if (route === 'GET /api/products') return send(res, 200, 'application/json', JSON.stringify(products));
    const orders = req.session.user ? await ordersOf(data, req.session.user) : [];
    if (route === 'GET /api/orders') return send(res, 200, 'application/json', JSON.stringify(orders));
    if (route === 'GET /api/profile') {
      // Through db.for(session): a profile just written is seen even when this read goes to a lagging replica.
      const rows = req.session.user
        ? await data.query<{ note: string }>('SELECT note FROM profiles WHERE user_name = $1', [
            req.session.user,
          ])
        : [];
      return send(
        res,
        200,
        'application/json',
        JSON.stringify({ user: req.session.user, note: rows[0]?.note ?? null }),
      );
    }
    if (req.method !== 'POST') {
      if (route !== 'GET /') return send(res, 404, 'text/plain', 'not found');
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        page({ clone, release, ...pick(req.session), products, orders }),
      );
    }
    const form = new URLSearchParams(await body(req));
    if (route === 'POST /login') {
      const name = (form.get('name') ?? '').trim().slice(0, 40);
      if (!name)
        return send(res, 400, 'application/json', '{"error":{"code":"SHOP_NAME","message":"name?"}}');
      await req.session.regenerate(); // a new id at login: no session fixation
      req.session.user = name;
    } else if (route === 'POST /logout') {
      await req.session.destroy();
    } else if (route === 'POST /profile') {
      const user = req.session.user;
      if (!user)
        return send(res, 401, 'application/json', '{"error":{"code":"SHOP_LOGIN","message":"log in first"}}');
      await data.execute(
        'INSERT INTO profiles (user_name, note) VALUES ($1, $2) ON CONFLICT (user_name) DO UPDATE SET note = EXCLUDED.note',
        [user, (form.get('note') ?? '').slice(0, 200)],
      );
    } else if (route === 'POST /counter') {
      await req.session.update((d) => {
        d.counter = (d.counter ?? 0) + 1;
      });
    } else if (route === 'POST /cart') {
      const item = form.get('item') ?? '';
      if (!products.some((p) => p.id === item)) return send(res, 400, 'text/plain', 'unknown product');
      await req.session.update((d) => {
        d.cart = [...(d.cart ?? []), item];
      });
    } else if (route === 'POST /checkout') {
      const user = req.session.user;
      const cart = req.session.cart ?? [];
      if (!user || cart.length === 0) {
        return send(
          res,
          400,
          'application/json',
          '{"error":{"code":"SHOP_CHECKOUT","message":"log in and fill the cart first"}}',
        );
      }
      const total = cart.reduce((sum, id) => sum + (products.find((p) => p.id === id)?.price_cents ?? 0), 0);
      // Write-through: the stock changes, so the cached product list is invalidated after COMMIT.
      await data.write('products', undefined, async (tx) => {
        for (const id of cart)
          await tx.query('UPDATE products SET stock = stock - 1 WHERE id = $1 AND stock > 0', [id]);
        await tx.query(
          'INSERT INTO orders (id, user_name, items, total_cents, created_at) VALUES ($1, $2, $3, $4, $5)',
          [randomUUID(), user, cart.join(','), total, new Date().toISOString()],
        );
      });
      await req.session.update((d) => {
        d.cart = [];
      });
    } else {
      return send(res, 404, 'text/plain', 'not found');
    }
    res.statusCode = 303;
    res.setHeader('location', '/');
    res.end();
  }),
);

function send(res: ServerResponse, status: number, type: string, text: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.end(text);
}

async function body(req: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 10_000) break;
  }
  return text;
}

function ordersOf(data: { query: Reader['query'] }, user: string): Promise<Order[]> {
  return data.query<Order>(
    'SELECT id, items, total_cents, created_at FROM orders WHERE user_name = $1 ORDER BY created_at DESC LIMIT 10',
    [user],
  );
}

/** The page's view of the session. */
const pick = ({ user, counter, cart }: Partial<Shop>) => ({ user, counter, cart });

await migrate();
// Connect to the session store before listening, so the first request is not the one that waits for it. A
// store that is down is not fatal: requests answer 503 with a code and open it again once it is back.
await s.ready().catch((err) => console.error(`session store not ready at start: ${err.message}`));
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
const stop = () => server.close(() => Promise.all([s.close(), db.close()]).then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
