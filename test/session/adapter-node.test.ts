import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SessionOptions, sessions } from '../../src/session/index.ts';
import { adapterConformance } from '../conformance/adapter-conformance.ts';

async function start(options: SessionOptions) {
  const s = sessions(options);
  const server = createServer(
    s.node(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const k = url.searchParams.get('k') ?? '';
      const json = (body: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /none':
          return res.end('ok');
        case 'GET /get': {
          const session = await req.session.load();
          return json({ id: session.id, data: session.toJSON() });
        }
        case 'GET /peek':
          return json({ n: req.session.n ?? null });
        case 'POST /set':
          req.session[k] = JSON.parse(url.searchParams.get('v') ?? 'null');
          return json({ ok: true });
        case 'POST /incr':
          return json({ value: await req.session.update((d) => (d[k] = Number(d[k] ?? 0) + 1)) });
        case 'POST /regenerate':
          await req.session.regenerate();
          return json({ id: req.session.id });
        case 'POST /destroy':
          await req.session.destroy();
          return json({ ok: true });
        default:
          res.statusCode = 404;
          return res.end();
      }
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await s.close();
    },
  };
}

adapterConformance({ name: 'node', start });
