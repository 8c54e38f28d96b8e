import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readHistory } from '../desired-state.ts';
import type { Fleet } from '../fleet.ts';
import type { FleetEvent } from '../fleet-event.ts';
import { type Asset, loadDashboardAssets } from './dashboard-assets.ts';
import { DashboardSession } from './dashboard-session.ts';
import { EventLog } from './event-log.ts';
import { FleetSampler, type Sample } from './fleet-sampler.ts';

/** A running dashboard: mount `handle` in an HTTP server, print `loginPath()`. */
export interface Dashboard {
  /** Answers the request when it is the dashboard's (`/`, `/dashboard...`); false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** `/dashboard/login?token=...` while the one-time token is unused, else `/dashboard/`. */
  loginPath(): string;
  close(): void;
}

/** The page's headers; `inlineHashes` allow its inlined stylesheet and nothing else inline. */
const securityHeaders = (inlineHashes: string[]) => ({
  'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self' ${inlineHashes.join(' ')}; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
});

/**
 * The fleet's web dashboard, served on its admin listener. Reading needs a login: the one-time token in
 * the URL `clones up` prints (like Jupyter's) becomes an HttpOnly cookie; the admin token works in the
 * login form too. Live data comes as server-sent events: every fleet event (numbered, resumable with
 * Last-Event-ID) and a sample each second. Actions are not here: the page calls the fleet API itself
 * (POST /rollback, /scale) with the admin token the user types, the same path as the CLI.
 *
 * @example
 *   const dashboard = createDashboard(fleet, adminToken, logger);
 *   createServer((req, res) => dashboard.handle(req, res) || api(req, res));
 *   console.log(`http://127.0.0.1:${port}${dashboard.loginPath()}`);
 */
export function createDashboard(fleet: Fleet, adminToken: string, logger: Logger): Dashboard {
  const session = new DashboardSession(keyFile(join(fleet.paths.home, 'dashboard-key')));
  const { pages, assets, inlineHashes } = loadDashboardAssets();
  const SECURITY_HEADERS = securityHeaders(inlineHashes);
  const log = new EventLog(1000);
  const streams = new Set<ServerResponse>();
  const unwatch = fleet.watch((event: FleetEvent) => {
    log.push({ ...event, at: event.at ?? new Date().toISOString() });
  });
  const sampler = new FleetSampler(fleet, (sample: Sample) => {
    const frame = `event: sample\ndata: ${JSON.stringify(sample)}\n\n`;
    for (const res of streams) res.write(frame);
  });
  log.subscribe((entry) => {
    const frame = `id: ${entry.id}\nevent: fleet\ndata: ${JSON.stringify(entry.data)}\n\n`;
    for (const res of streams) res.write(frame);
  });
  sampler.start();
  const admin = createHash('sha256').update(adminToken).digest();

  const page = (res: ServerResponse, status: number, name: string, message = '') => {
    const body = (pages[name] ?? '').replace('{{message}}', escapeHtml(message));
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(body);
  };

  const loggedIn = (res: ServerResponse) => {
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      'set-cookie': session.cookie(),
      location: '/dashboard/',
      'cache-control': 'no-store',
    });
    res.end();
  };

  const login = async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > 4096) break;
    }
    const token = new URLSearchParams(body).get('token')?.trim() ?? '';
    const isAdmin = timingSafeEqual(createHash('sha256').update(token).digest(), admin) && token !== '';
    if (isAdmin || session.redeem(token)) return loggedIn(res);
    logger.warn('dashboard: login refused');
    page(res, 401, 'login', 'That token is not valid (a login link works once).');
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    const last = req.headers['last-event-id'];
    const missed = log.since(typeof last === 'string' ? last : undefined);
    if (missed) {
      for (const e of missed) res.write(`id: ${e.id}\nevent: fleet\ndata: ${JSON.stringify(e.data)}\n\n`);
    } else {
      const recent = log.recent(100);
      const snapshot = {
        type: 'snapshot',
        boot: log.boot,
        sample: sampler.latest(),
        series: sampler.series(),
        releases: fleet.releases(),
        history: readHistory(fleet.paths.history).slice(-30),
        events: recent.map((e) => e.data),
      };
      const id = recent.at(-1)?.id ?? `${log.boot}.0`;
      res.write(`id: ${id}\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    }
    streams.add(res);
    res.on('close', () => streams.delete(res));
  };

  const asset = (req: IncomingMessage, res: ServerResponse, a: Asset) => {
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, { etag: a.etag });
      return res.end();
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': a.type,
      'content-length': a.body.length,
      'cache-control': 'private, max-age=31536000, immutable',
      etag: a.etag,
    });
    res.end(a.body);
  };

  return {
    handle(req, res) {
      const path = new URL(req.url ?? '/', 'http://fleet').pathname;
      if (path !== '/' && path !== '/dashboard' && !path.startsWith('/dashboard/')) return false;
      const method = req.method ?? 'GET';
      const ok = session.valid(req.headers.cookie);
      if (path === '/' || path === '/dashboard') {
        res.writeHead(302, { location: '/dashboard/' });
        res.end();
      } else if (path === '/dashboard/login' && method === 'GET') {
        const token = new URL(req.url ?? '/', 'http://fleet').searchParams.get('token');
        if (token && session.redeem(token)) loggedIn(res);
        else if (ok) loggedIn(res);
        else
          page(
            res,
            token ? 401 : 200,
            'login',
            token ? 'That login link was already used, or is not valid.' : '',
          );
      } else if (path === '/dashboard/login' && method === 'POST') {
        login(req, res).catch((err) => {
          logger.warn({ err }, 'dashboard login failed');
          if (!res.headersSent) page(res, 400, 'login', 'Could not read the form.');
        });
      } else if (!ok) {
        if (path === '/dashboard/events' || path.startsWith('/dashboard/assets/')) {
          res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
          res.end('log in first\n');
        } else page(res, 401, 'login');
      } else if (path === '/dashboard/' && method === 'GET') {
        page(res, 200, 'index');
      } else if (path === '/dashboard/events' && method === 'GET') {
        events(req, res);
      } else if (path === '/dashboard/logout' && method === 'POST') {
        res.writeHead(303, {
          'set-cookie': `${DashboardSession.cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
          location: '/dashboard/login',
        });
        res.end();
      } else {
        const a = assets.get(path);
        if (a && method === 'GET') asset(req, res, a);
        else {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('not found\n');
        }
      }
      return true;
    },
    loginPath() {
      const token = session.loginToken;
      return token ? `/dashboard/login?token=${token}` : '/dashboard/';
    },
    close() {
      sampler.stop();
      unwatch();
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}

/** The cookie-signing key, kept 0600 in the fleet's home so logins survive a restart. */
function keyFile(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const key = randomBytes(32).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
