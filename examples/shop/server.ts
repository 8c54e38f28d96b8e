// The example app: a tiny shop whose every bit of user state lives in clones/session, so any clone can
// serve any request. Run as clones by `npm start` (clones up examples/shop), or alone:
//   SESSION_SECRET=$(openssl rand -base64 32) PORT=3000 node --import tsx examples/shop/server.ts
import { createServer, type ServerResponse } from 'node:http';
import { sessions } from 'clones/session';

type Shop = { user: string; counter: number; cart: string[] };

const clone = process.env.CLONES_CLONE_ID ?? 'solo';
const release = process.env.CLONES_RELEASE ?? 'dev';
const s = sessions<Shop>({ eager: true });
const PRODUCTS = ['apple', 'bread', 'cheese', 'dates'];

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
    if (req.method !== 'POST') {
      if (route !== 'GET /') return send(res, 404, 'text/plain', 'not found');
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        page(req.session.user, req.session.counter, req.session.cart),
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
    } else if (route === 'POST /counter') {
      await req.session.update((d) => {
        d.counter = (d.counter ?? 0) + 1;
      });
    } else if (route === 'POST /cart') {
      const item = form.get('item') ?? '';
      if (!PRODUCTS.includes(item)) return send(res, 400, 'text/plain', 'unknown product');
      await req.session.update((d) => {
        d.cart = [...(d.cart ?? []), item];
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

const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(user: string | undefined, counter: number | undefined, cart: string[] | undefined): string {
  const items = (cart ?? []).map((i) => `<li>${escapeHtml(i)}</li>`).join('');
  const buttons = PRODUCTS.map(
    (p) => `<form method="post" action="/cart"><button name="item" value="${p}">add ${p}</button></form>`,
  ).join('');
  const who = user
    ? `<p>Signed in as <b>${escapeHtml(user)}</b></p><form method="post" action="/logout"><button>log out</button></form>`
    : `<form method="post" action="/login"><input name="name" placeholder="your name"><button>log in</button></form>`;
  return `<!doctype html><title>clones shop</title><h1>clones shop</h1>
<p>Served by clone <b>${escapeHtml(clone)}</b>, release <code>${escapeHtml(release)}</code></p>${who}
<form method="post" action="/counter"><button>count: ${counter ?? 0}</button></form>
<h2>Cart</h2><ul>${items}</ul>${buttons}`;
}

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
const stop = () => server.close(() => s.close().then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
