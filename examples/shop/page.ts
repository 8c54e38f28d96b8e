// The shop's one page, rendered on the server: no script, so it works with every clone and every browser.
// The status bar says which clone (on which host) served it and from which release: reload and watch it change.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** A product as the shop stores it. */
export type Product = { id: string; name: string; price_cents: number; stock: number };
/** An order as the shop stores it (`items` is the product ids, comma-separated). */
export type Order = { id: string; items: string; total_cents: number; created_at: string };

/** What one page shows: who is signed in, their session's cart and counter, the products and their orders. */
export interface PageData {
  clone: string;
  release: string;
  user: string | undefined;
  counter: number | undefined;
  cart: string[] | undefined;
  products: Product[];
  orders: Order[];
}

// Hand-written, inlined: one request paints the page, and nothing comes from a CDN.
const CSS = readFileSync(new URL('./shop.css', import.meta.url), 'utf8');
const HOST = hostname();

const escapeHtml = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;

/**
 * The shop's HTML page.
 *
 * @example
 *   send(res, 200, 'text/html; charset=utf-8', page({ clone, release, user, counter, cart, products, orders }));
 */
export function page(d: PageData): string {
  const name = new Map(d.products.map((p) => [p.id, p]));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clones shop</title>
<style>${CSS}</style>
</head>
<body>
<div class="status" role="status" aria-label="Who served this page">
  <span>served by clone <b id="served-clone">${escapeHtml(d.clone)}</b></span>
  <span>on host <b id="served-host">${escapeHtml(HOST)}</b></span>
  <span>release <code id="served-release" title="${escapeHtml(d.release)}">${escapeHtml(d.release.slice(0, 12))}</code></span>
</div>
<header class="top">
  <h1><span aria-hidden="true">◆</span> clones shop</h1>
  ${account(d.user)}
</header>
<main class="layout">
  <section aria-labelledby="products-h" class="products">
    <h2 id="products-h">Products</h2>
    <ul class="grid">${d.products.map(productCard).join('')}</ul>
  </section>
  <aside class="side">
    ${cartPanel(d, name)}
    ${ordersPanel(d, name)}
    <section aria-labelledby="counter-h" class="panel">
      <h2 id="counter-h">Session counter</h2>
      <p class="muted">Kept in the session store: it counts on whichever clone serves you.</p>
      <form method="post" action="/counter"><button class="secondary">Clicked ${d.counter ?? 0} times</button></form>
    </section>
  </aside>
</main>
</body>
</html>`;
}

function account(user: string | undefined): string {
  if (user) {
    return `<div class="account"><span>Signed in as <b>${escapeHtml(user)}</b></span>
  <form method="post" action="/logout"><button class="secondary">Log out</button></form></div>`;
  }
  return `<form method="post" action="/login" class="account login">
    <label for="name">Your name</label>
    <input id="name" name="name" autocomplete="username" required maxlength="40">
    <button>Log in</button>
  </form>`;
}

function productCard(p: Product): string {
  const low = p.stock <= 0 ? 'Sold out' : `${p.stock} in stock`;
  return `<li class="card">
      <div class="swatch swatch-${escapeHtml(p.id)}" aria-hidden="true">${escapeHtml(p.name.slice(0, 1))}</div>
      <h3>${escapeHtml(p.name)}</h3>
      <p class="price">${money(p.price_cents)}</p>
      <p class="muted">${low}</p>
      <form method="post" action="/cart"><button name="item" value="${escapeHtml(p.id)}"${p.stock <= 0 ? ' disabled' : ''} aria-label="Add ${escapeHtml(p.name)} to the cart">Add to cart</button></form>
    </li>`;
}

function cartPanel(d: PageData, byId: Map<string, Product>): string {
  const cart = d.cart ?? [];
  if (cart.length === 0) {
    return `<section aria-labelledby="cart-h" class="panel" id="cart">
      <h2 id="cart-h">Cart</h2>
      <p class="empty">Your cart is empty.</p>
    </section>`;
  }
  const counts = new Map<string, number>();
  for (const id of cart) counts.set(id, (counts.get(id) ?? 0) + 1);
  let total = 0;
  const lines = [...counts].map(([id, n]) => {
    const p = byId.get(id);
    const cents = (p?.price_cents ?? 0) * n;
    total += cents;
    return `<tr><td>${escapeHtml(p?.name ?? id)}</td><td class="num">${n}</td><td class="num">${money(cents)}</td></tr>`;
  });
  const checkout = d.user
    ? '<form method="post" action="/checkout"><button class="wide">Check out</button></form>'
    : '<p class="muted">Log in to check out.</p>';
  return `<section aria-labelledby="cart-h" class="panel" id="cart">
      <h2 id="cart-h">Cart <span class="count">${cart.length}</span></h2>
      <table><thead><tr><th scope="col">Item</th><th scope="col" class="num">Qty</th><th scope="col" class="num">Amount</th></tr></thead>
      <tbody>${lines.join('')}</tbody>
      <tfoot><tr><th scope="row" colspan="2">Total</th><td class="num total">${money(total)}</td></tr></tfoot></table>
      ${checkout}
    </section>`;
}

function ordersPanel(d: PageData, byId: Map<string, Product>): string {
  const body = !d.user
    ? '<p class="empty">Log in to see your orders.</p>'
    : d.orders.length === 0
      ? '<p class="empty">No orders yet.</p>'
      : `<ol class="orders">${d.orders
          .map((o) => {
            const items = o.items
              .split(',')
              .map((id) => byId.get(id)?.name ?? id)
              .join(', ');
            return `<li><span>${escapeHtml(items)}</span><b>${money(o.total_cents)}</b>
          <time datetime="${escapeHtml(o.created_at)}">${escapeHtml(o.created_at.slice(0, 16).replace('T', ' '))} UTC</time></li>`;
          })
          .join('')}</ol>`;
  return `<section aria-labelledby="orders-h" class="panel" id="orders">
      <h2 id="orders-h">Your orders</h2>
      ${body}
    </section>`;
}
