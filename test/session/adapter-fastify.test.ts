import Fastify from 'fastify';
import { type SessionOptions, sessions } from '../../src/session/index.ts';
import { adapterConformance } from '../conformance/adapter-conformance.ts';

type Query = { k?: string; v?: string };

async function start(options: SessionOptions) {
  const s = sessions(options);
  const app = Fastify();
  await app.register(s.fastify);
  app.get('/none', async () => 'ok');
  app.get('/get', async (req) => {
    const session = await req.session.load();
    return { id: session.id, data: session.toJSON() };
  });
  app.get('/peek', async (req) => ({ n: req.session.n ?? null }));
  app.post<{ Querystring: Query }>('/set', async (req) => {
    req.session[req.query.k ?? ''] = JSON.parse(req.query.v ?? 'null');
    return { ok: true };
  });
  app.post<{ Querystring: Query }>('/incr', async (req) => {
    const k = req.query.k ?? '';
    return { value: await req.session.update((d) => (d[k] = Number(d[k] ?? 0) + 1)) };
  });
  app.post('/regenerate', async (req) => {
    await req.session.regenerate();
    return { id: req.session.id };
  });
  app.post('/destroy', async (req) => {
    await req.session.destroy();
    return { ok: true };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    async close() {
      await app.close();
      await s.close();
    },
  };
}

adapterConformance({ name: 'fastify', start });
