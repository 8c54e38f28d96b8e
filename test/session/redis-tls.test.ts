import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { startRedis } from '../harness/redis-server.ts';
import { startSessionApp } from '../harness/session-app.ts';

// rediss:// with a private CA, a password and a database number: sessions work end to end; a URL that does
// not trust the server's certificate gets the coded 503, not a crash.
test('rediss:// with password, db and a private CA', async () => {
  const redis = await startRedis({ tls: true, password: 'p@ss word' });
  const url = new URL(redis.url);
  url.pathname = '/3';
  const good = await startSessionApp({ store: url.toString() });
  const untrusted = new URL(url);
  untrusted.searchParams.delete('ca');
  const bad = await startSessionApp({ store: untrusted.toString(), storeTimeout: 1000 });
  try {
    assert.match(redis.url, /^rediss:\/\//);
    const c = new CookieClient(good.url);
    await c.post('/set?k=user&v=%22ada%22');
    assert.deepEqual((await c.get('/get')).body.data, { user: 'ada' });
    const refused = await new CookieClient(bad.url).post('/set?k=a&v=1');
    assert.equal(refused.status, 503);
    assert.match(refused.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
  } finally {
    await good.close();
    await bad.close();
    await redis.stop();
  }
});
