import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { type Session, type SessionOptions, sessions } from '../../src/session/index.ts';
import { adapterConformance } from '../conformance/adapter-conformance.ts';

async function start(options: SessionOptions) {
  const s = sessions(options);
  const app = new Hono<{ Variables: { session: Session } }>();
  app.use(s.hono());
  app.get('/none', (c) => c.text('ok'));
  app.get('/get', async (c) => {
    const session = await c.get('session').load();
    return c.json({ id: session.id, data: session.toJSON() });
  });
  app.get('/peek', (c) => c.json({ n: c.get('session').n ?? null }));
  app.post('/set', (c) => {
    c.get('session')[c.req.query('k') ?? ''] = JSON.parse(c.req.query('v') ?? 'null');
    return c.json({ ok: true });
  });
  app.post('/incr', async (c) => {
    const k = c.req.query('k') ?? '';
    return c.json({ value: await c.get('session').update((d) => (d[k] = Number(d[k] ?? 0) + 1)) });
  });
  app.post('/regenerate', async (c) => {
    await c.get('session').regenerate();
    return c.json({ id: c.get('session').id });
  });
  app.post('/destroy', async (c) => {
    await c.get('session').destroy();
    return c.json({ ok: true });
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  if (!server.listening) await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await s.close();
    },
  };
}

adapterConformance({ name: 'hono', start });
