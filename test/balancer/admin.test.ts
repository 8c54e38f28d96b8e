import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fetchText, startBalancer, startUpstream } from './helpers.ts';

const token = 'test-token-0123456789abcdef';

describe('balancer: admin API', async () => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const { lb, url } = await startBalancer({
    admin: { port: 0, token },
    targets: [{ id: 'a', url: a.url, release: 'v1' }],
  });
  const admin = `http://127.0.0.1:${lb.adminAddress()!.port}`;
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  after(async () => {
    await lb.close();
    await a.close();
    await b.close();
  });

  test('listens on loopback only, and refuses a missing or wrong token with 401', async () => {
    assert.equal(lb.adminAddress()!.address, '127.0.0.1');
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer ${token}x` },
      { authorization: token },
    ]) {
      const res = await fetchText(`${admin}/state`, { headers });
      assert.equal(res.status, 401);
      assert.equal(JSON.parse(res.body).error.code, 'CLONES_BALANCER_UNAUTHORIZED');
    }
  });

  test('lists, adds, weighs, drains and removes targets', async () => {
    const state = JSON.parse((await fetchText(`${admin}/state`, { headers: auth })).body);
    assert.equal(state.targets[0].id, 'a');
    assert.equal(state.targets[0].release, 'v1');
    assert.equal(state.targets[0].health, 'healthy');
    assert.equal(typeof state.targets[0].inFlight, 'number');

    const added = await fetchText(`${admin}/targets`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ id: 'b', url: b.url, group: 'canary', release: 'v2' }),
    });
    assert.equal(added.status, 201);
    const dup = await fetchText(`${admin}/targets`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ id: 'b', url: b.url }),
    });
    assert.equal(JSON.parse(dup.body).error.code, 'CLONES_BALANCER_DUPLICATE_TARGET');
    const bad = await fetchText(`${admin}/targets`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ id: 'c', url: 'ftp://x' }),
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error.message, /^url:/);

    const weights = await fetchText(`${admin}/groups`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ default: 0, canary: 100 }),
    });
    assert.equal(weights.status, 200);
    assert.equal((await fetchText(`${url}/`)).headers['x-clones-release'], 'v2');

    const drained = await fetchText(`${admin}/targets/b/drain?wait=1`, { method: 'POST', headers: auth });
    assert.equal(drained.status, 200);
    assert.equal(
      (await fetchText(`${url}/`)).headers['x-clones-release'],
      'v1',
      'the client moves off the drained group',
    );
    const removed = await fetchText(`${admin}/targets/b?wait=1`, { method: 'DELETE', headers: auth });
    assert.equal(removed.status, 200);
    const missing = await fetchText(`${admin}/targets/b`, { method: 'DELETE', headers: auth });
    assert.equal(JSON.parse(missing.body).error.code, 'CLONES_BALANCER_UNKNOWN_TARGET');
  });

  test('a malformed %-escape in the path is a coded 400, not a 500', async () => {
    for (const path of ['/targets/%E0%A4%A', '/targets/%zz/drain', '/targets/%']) {
      const res = await fetchText(`${admin}${path}`, { method: 'DELETE', headers: auth });
      assert.equal(res.status, 400, `${path}: ${res.body}`);
      assert.equal(JSON.parse(res.body).error.code, 'CLONES_BALANCER_BAD_SPEC');
    }
  });

  test('serves Prometheus metrics', async () => {
    await fetchText(`${url}/`);
    const res = await fetchText(`${admin}/metrics`, { headers: auth });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /clones_balancer_requests_total\{code="200"\} \d+/);
    assert.match(res.body, /clones_balancer_request_duration_seconds_bucket\{le="\+Inf"\} \d+/);
    assert.match(res.body, /clones_balancer_in_flight\{target="a",group="default"\} 0/);
  });
});
