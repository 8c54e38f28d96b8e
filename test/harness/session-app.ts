import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SessionOptions, sessions } from '../../src/session/index.ts';

export const SECRET = 'test-secret-that-is-at-least-32-bytes-long!';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The app every session conformance test drives, on node:http and port 0. Routes:
 *   GET  /none                 never touches the session
 *   GET  /get                  loads, answers { id, data }
 *   GET  /peek                 reads without load (only legal when there is no cookie)
 *   POST /set?k=&v=&wait=      sets k to JSON v without loading; waits `wait` ms first (after loading if load=1)
 *   POST /incr?k=              update(fn) that adds one to k
 *   POST /push?k=&v=           loads and pushes v onto the array at k (nested mutation)
 *   POST /regenerate, /destroy
 *   GET  /touch?wait=          loads, waits, ends (a touch at the end when due)
 */
export async function startSessionApp(options: SessionOptions) {
  const s = sessions({ secret: SECRET, ...options });
  const server = createServer(
    s.node(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const q = (name: string) => url.searchParams.get(name) ?? '';
      const json = (body: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      const wait = Number(q('wait') || 0);
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /none':
          return res.end('ok');
        case 'GET /get': {
          const session = await req.session.load();
          return json({ id: session.id, data: session.toJSON() });
        }
        case 'GET /peek':
          return json({ data: req.session.toJSON() });
        case 'POST /set': {
          if (q('load') === '1') await req.session.load();
          if (wait) await sleep(wait);
          req.session[q('k')] = JSON.parse(q('v'));
          return json({ ok: true });
        }
        case 'POST /incr': {
          const value = await req.session.update((d) => {
            const next = Number(d[q('k')] ?? 0) + 1;
            d[q('k')] = next;
            return next;
          });
          return json({ value });
        }
        case 'POST /push': {
          await req.session.load();
          const list = (req.session[q('k')] as unknown[] | undefined) ?? [];
          if (!req.session[q('k')]) req.session[q('k')] = list;
          (req.session[q('k')] as unknown[]).push(JSON.parse(q('v')));
          return json({ ok: true });
        }
        case 'POST /regenerate': {
          await req.session.regenerate();
          return json({ id: req.session.id });
        }
        case 'POST /destroy': {
          await req.session.destroy();
          return json({ ok: true });
        }
        case 'GET /touch': {
          await req.session.touch();
          if (wait) await sleep(wait);
          return json({ ok: true });
        }
        default:
          res.statusCode = 404;
          return res.end();
      }
    }),
  );
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    s,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await s.close();
    },
  };
}

/**
 * How long a request may take while its store is down, in tests that set storeTimeout to 500-1000 ms: the
 * answer is bounded by the timeout, and the slack is for a busy 2-core CI machine. A hang takes far longer.
 */
export const NO_HANG_MS = 5000;
