import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file of the page, with its content hash in its URL so it can be cached for good. */
export interface Asset {
  /** `/dashboard/assets/app.3f2a9c1b.js` */
  url: string;
  type: string;
  body: Buffer;
  etag: string;
}

// src/fleet/dashboard/ and dist/fleet/dashboard/ are both three levels under the package root.
const WEB = fileURLToPath(new URL('../../../web/dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The dashboard's page, read once from `web/dashboard/`: hand-written HTML, CSS and JS, no build step and no
 * CDN. Assets get hashed URLs (served `immutable`); `index.html` and `login.html` get their links rewritten
 * to those URLs. A `<link rel="stylesheet" href="{{style.css}}" data-inline>` becomes a `<style>` with the
 * file's text (a stylesheet is render-blocking: inlined, the first paint waits for no request, not even a
 * cache lookup); `inlineHashes` are the CSP hashes
 * (`'sha256-...'`) of what was inlined, for `style-src`.
 *
 * @example
 *   const { pages, assets, inlineHashes } = loadDashboardAssets();
 *   res.end(pages.index);
 */
export function loadDashboardAssets(dir = WEB): {
  pages: Record<string, string>;
  assets: Map<string, Asset>;
  inlineHashes: string[];
} {
  const assets = new Map<string, Asset>();
  const byName = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    const ext = extname(name);
    if (ext === '.html' || !TYPES[ext]) continue;
    const body = readFileSync(`${dir}${name}`);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
    const url = `/dashboard/assets/${name.slice(0, -ext.length)}.${hash}${ext}`;
    assets.set(url, { url, type: TYPES[ext]!, body, etag: `"${hash}"` });
    byName.set(name, url);
  }
  const pages: Record<string, string> = {};
  const inlineHashes = new Set<string>();
  const inline = (file: string) => {
    const text = readFileSync(`${dir}${file}`, 'utf8');
    inlineHashes.add(`'sha256-${createHash('sha256').update(text).digest('base64')}'`);
    return text;
  };
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.html'))) {
    pages[name.slice(0, -5)] = readFileSync(`${dir}${name}`, 'utf8')
      .replace(/<link rel="stylesheet" href="\{\{([\w.-]+\.css)\}\}" data-inline>/g, (all, file: string) =>
        byName.has(file) ? `<style>${inline(file)}</style>` : all,
      )
      .replace(/\{\{([\w.-]+)\}\}/g, (all, file: string) => byName.get(file) ?? all);
  }
  return { pages, assets, inlineHashes: [...inlineHashes] };
}
