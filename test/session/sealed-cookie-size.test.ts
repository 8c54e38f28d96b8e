import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CookieClient } from '../harness/cookie-client.ts';
import { startSessionApp } from '../harness/session-app.ts';

// The whole Set-Cookie header is measured before it is sent: over 4,096 bytes the save fails with its own
// code where the session is saved, and the request gets that error, never a cookie the browser would drop.
test('a sealed cookie over 4,096 bytes is an error with its own code, raised at save', async () => {
  const app = await startSessionApp({ store: 'cookie:' });
  try {
    const c = new CookieClient(app.url);
    await c.post(`/set?k=small&v=${encodeURIComponent(JSON.stringify('x'.repeat(100)))}`);
    const before = c.cookieHeader();
    const fits = await c.post(`/set?k=big&v=${encodeURIComponent(JSON.stringify('y'.repeat(2500)))}`);
    assert.equal(fits.status, 200);
    const header = fits.setCookies.find((h) => h.startsWith('clones.session='))!;
    assert.ok(Buffer.byteLength(`Set-Cookie: ${header}`) <= 4096);
    const tooBig = await c.post(`/set?k=huge&v=${encodeURIComponent(JSON.stringify('z'.repeat(3500)))}`);
    assert.equal(tooBig.status, 500);
    assert.equal(tooBig.body.error.code, 'CLONES_SESSION_COOKIE_TOO_LARGE');
    assert.deepEqual(tooBig.setCookies, [], 'no cookie sent at all');
    const data = (await c.get('/get')).body.data;
    assert.equal(data.big.length, 2500, 'the session before the failed save is intact');
    assert.equal(data.huge, undefined);
    assert.notEqual(c.cookieHeader(), before);
  } finally {
    await app.close();
  }
});
