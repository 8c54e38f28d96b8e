import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import express from 'express';
import { type SessionOptions, sessions } from '../../src/session/index.ts';
import {
  adapterConformance,
  assertOutage,
  deadRedisUrl,
  signedCookie,
} from '../conformance/adapter-conformance.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { SECRET } from '../harness/session-app.ts';

async function start(options: SessionOptions, { errors = true } = {}) {
  const s = sessions(options);
  const app = express();
  app.use(s.express());
  app.get('/none', (_req, res) => {
    res.send('ok');
  });
  app.get('/get', async (req, res) => {
    const session = await req.session.load();
    res.json({ id: session.id, data: session.toJSON() });
  });
  app.get('/peek', (req, res) => {
    res.json({ n: req.session.n ?? null });
  });
  app.post('/set', (req, res) => {
    req.session[String(req.query.k)] = JSON.parse(String(req.query.v));
    res.json({ ok: true });
  });
  app.post('/incr', async (req, res) => {
    const k = String(req.query.k);
    res.json({ value: await req.session.update((d) => (d[k] = Number(d[k] ?? 0) + 1)) });
  });
  app.post('/regenerate', async (req, res) => {
    await req.session.regenerate();
    res.json({ id: req.session.id });
  });
  app.post('/destroy', async (req, res) => {
    await req.session.destroy();
    res.json({ ok: true });
  });
  if (errors) app.use(s.expressErrors());
  const server: Server = app.listen(0, '127.0.0.1');
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

adapterConformance({ name: 'express', start: (options) => start(options) });

describe('express adapter without expressErrors()', () => {
  test("a store outage in a route goes to Express's own error handler: 503, but HTML, not our JSON", async () => {
    const app = await start(
      { secret: SECRET, store: await deadRedisUrl(), storeTimeout: 500 },
      { errors: false },
    );
    try {
      const c = new CookieClient(app.url);
      const started = Date.now();
      const res = await c.get('/get', { cookie: signedCookie() });
      assert.ok(Date.now() - started < 2000);
      // finalhandler takes the status from err.status and answers an HTML page: the fail-closed status holds,
      // the coded JSON body needs s.expressErrors() after the routes.
      assert.equal(res.status, 503);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.equal(res.body?.error, undefined);
    } finally {
      await app.close();
    }
  });

  test('in eager mode the middleware answers 503 JSON itself, with or without expressErrors()', async () => {
    const app = await start(
      { secret: SECRET, store: await deadRedisUrl(), storeTimeout: 500, eager: true },
      { errors: false },
    );
    try {
      const res = await new CookieClient(app.url).get('/peek', { cookie: signedCookie() });
      assertOutage(res, 'GET /peek (eager, no expressErrors)');
    } finally {
      await app.close();
    }
  });
});
