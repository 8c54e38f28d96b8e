import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { storeKey } from '../../src/session/session-id.ts';
import { CookieClient } from '../harness/cookie-client.ts';
import { type RedisCluster, startRedisCluster } from '../harness/redis-cluster.ts';
import { NO_HANG_MS, startSessionApp } from '../harness/session-app.ts';

// One master of the 3-master cluster (no replicas) dies with kill -9: the sessions on its slots get the
// outage policy (a coded 503) within the timeout, the other two shards keep serving, and once the node is
// back on its port (same node id and slots, data gone: it keeps none) the same app serves its slots again.
describe('redis cluster: one master killed and restarted', () => {
  let cluster: RedisCluster;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  it('fail-closed on the dead shard only, no hang, recovery without restarting the app', async () => {
    const app = await startSessionApp({ store: cluster.url, storeTimeout: 1000 });
    const victim = cluster.nodes[0]!;
    try {
      const clients = Array.from({ length: 24 }, () => new CookieClient(app.url));
      for (const [i, c] of clients.entries()) assert.equal((await c.post(`/set?k=n&v=${i}`)).status, 200);
      // Which sessions live on the victim's slots: asked of the node itself.
      const direct = new Redis({ host: '127.0.0.1', port: victim.port, lazyConnect: true });
      const onVictim = new Set<number>();
      try {
        for (const [i, c] of clients.entries()) {
          const key = storeKey((await c.get('/get')).body.id);
          const found = await direct.call('EXISTS', `clones:s:{${key}}`).catch(() => 0); // MOVED: not here
          if (found === 1) onVictim.add(i);
        }
      } finally {
        direct.disconnect();
      }
      assert.ok(onVictim.size > 0 && onVictim.size < clients.length, `${onVictim.size} of 24 on the victim`);

      await victim.kill();
      // Past cluster-node-timeout (2 s), so the other masters have marked it failed too.
      for (const round of [1, 2, 3]) {
        for (const [i, c] of clients.entries()) {
          const started = Date.now();
          const r = await c.get('/get');
          const took = Date.now() - started;
          assert.ok(took < NO_HANG_MS, `an answer took ${took} ms`);
          if (onVictim.has(i)) {
            assert.equal(r.status, 503, `round ${round}, session ${i}: ${JSON.stringify(r.body)}`);
            assert.match(r.body.error.code, /^CLONES_SESSION_STORE_(UNAVAILABLE|TIMEOUT)$/);
          } else {
            assert.equal(
              r.status,
              200,
              `round ${round}, session ${i} on a live shard: ${JSON.stringify(r.body)}`,
            );
            assert.deepEqual(r.body.data, { n: i });
          }
        }
        await sleep(700);
      }

      await victim.restart();
      // The same app: the victim's sessions are gone with its memory, so they come back empty, and new writes
      // to its slots work; the others never lost anything.
      const deadline = Date.now() + 15_000;
      for (const [i, c] of clients.entries()) {
        let r = await c.get('/get');
        while (r.status !== 200 && Date.now() < deadline) {
          await sleep(200);
          r = await c.get('/get');
        }
        assert.equal(r.status, 200, `session ${i} after the restart: ${JSON.stringify(r.body)}`);
        assert.deepEqual(r.body.data, onVictim.has(i) ? {} : { n: i });
      }
      for (const i of onVictim) {
        const c = clients[i]!;
        assert.equal((await c.post(`/set?k=n&v=${i}`)).status, 200);
        assert.deepEqual((await c.get('/get')).body.data, { n: i });
      }
    } finally {
      await app.close();
    }
  });
});
