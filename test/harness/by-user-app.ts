import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SessionOptions, sessions } from '../../src/session/index.ts';
import { CookieClient } from './cookie-client.ts';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes';

/** An app with login (regenerate + bindUser), "log out my other devices", and a write held open on a gate. */
export async function startByUserApp(options: SessionOptions) {
  const s = sessions({ secret: SECRET, ...options });
  let gate: { loaded: () => void; release: Promise<void> } | undefined;
  const server = createServer(
    s.node(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (body: unknown, status = 200) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      switch (`${req.method} ${url.pathname}`) {
        case 'POST /login': {
          const user = url.searchParams.get('user') ?? '';
          await req.session.regenerate();
          req.session.user = user;
          await req.session.bindUser(user);
          return json({ ok: true });
        }
        case 'POST /rotate':
          await req.session.load();
          await req.session.regenerate();
          return json({ ok: true });
        case 'GET /me': {
          const session = await req.session.load();
          return json({ user: session.user ?? null, note: session.note ?? null });
        }
        case 'GET /devices': {
          const session = await req.session.load();
          return json({ devices: await s.engine.listByUser(String(session.user)) });
        }
        case 'POST /logout-others': {
          const session = await req.session.load();
          return json({ n: await s.engine.destroyByUser(String(session.user), { except: req.session }) });
        }
        case 'POST /slow-write': {
          await req.session.load();
          const held = gate;
          held?.loaded();
          await held?.release;
          req.session.note = 'late write';
          return json({ ok: true });
        }
        default:
          return json({ error: 'not found' }, 404);
      }
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    engine: s.engine,
    /** The next /slow-write waits after its load until `release()`; `loaded` resolves once it has loaded. */
    hold() {
      let release!: () => void;
      let loaded!: () => void;
      const wasLoaded = new Promise<void>((r) => {
        loaded = r;
      });
      gate = { loaded, release: new Promise<void>((r) => (release = r)) };
      return { wasLoaded, release };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await s.close();
    },
  };
}

export type ByUserApp = Awaited<ReturnType<typeof startByUserApp>>;

/**
 * "Log me out everywhere" as users see it: the same user in 3 browsers (one rotates its id), a stranger, and
 * a save in flight on a browser that gets logged out; only the current browser and the stranger stay in.
 */
export async function checkLogOutEverywhere(app: ByUserApp): Promise<void> {
  const user = `ada-${Date.now()}`;
  const [current, second, third] = [1, 2, 3].map(() => new CookieClient(app.url)) as [
    CookieClient,
    CookieClient,
    CookieClient,
  ];
  for (const browser of [current, second, third]) {
    assert.equal((await browser.post(`/login?user=${user}`)).status, 200);
    assert.deepEqual((await browser.get('/me')).body, { user, note: null });
  }
  // A stranger's session must survive.
  const stranger = new CookieClient(app.url);
  await stranger.post('/login?user=someone-else');
  // regenerate() keeps the binding: the rotated session is still listed, the old id is not.
  await third.post('/rotate');
  assert.equal((await third.get('/me')).body.user, user);
  assert.equal((await current.get('/devices')).body.devices.length, 3);

  // `second` has a request in flight that has read its session and will write after the logout.
  const held = app.hold();
  const inFlight = second.post('/slow-write');
  await held.wasLoaded;
  const r = await current.post('/logout-others');
  assert.deepEqual(r.body, { n: 2 });
  held.release();
  assert.equal((await inFlight).status, 200);

  assert.deepEqual(
    (await second.get('/me')).body,
    { user: null, note: null },
    'not revived by the late save',
  );
  assert.deepEqual((await third.get('/me')).body, { user: null, note: null });
  assert.deepEqual((await current.get('/me')).body, { user, note: null }, 'the current browser stays in');
  assert.equal((await stranger.get('/me')).body.user, 'someone-else');
  assert.equal((await current.get('/devices')).body.devices.length, 1);
}
