import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { RetryBudget } from '../../src/balancer/retry-budget.ts';
import {
  type CloneProcess,
  fetchText,
  load,
  sleep,
  startBalancer,
  startCloneProcess,
  startUpstream,
  waitFor,
} from './helpers.ts';

describe('balancer: retries', () => {
  test('kill -9 one of 3 clones under continuous GET load: 0 failed requests, the dead clone is out within 1 s', async () => {
    const clones: CloneProcess[] = [];
    for (const id of ['c1', 'c2', 'c3']) clones.push(await startCloneProcess(id));
    const { lb, url } = await startBalancer({
      healthCheck: { enabled: true },
      targets: clones.map((c) => ({ id: c.id, url: c.url })),
    });
    try {
      await waitFor(() => lb.state().targets.every((t) => t.health === 'healthy'), 5000);
      let stop = false;
      const failures: string[] = [];
      let ok = 0;
      const worker = async () => {
        while (!stop) {
          try {
            const res = await fetchText(`${url}/slow?ms=5`);
            if (res.status === 200) ok++;
            else failures.push(`${res.status} ${res.body}`);
          } catch (err) {
            failures.push(String(err));
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await sleep(300);
      const killedAt = Date.now();
      clones[1]!.kill('SIGKILL');
      const out = () => {
        const t = lb.state().targets.find((x) => x.id === 'c2')!;
        return t.ejected === true || t.health === 'unhealthy';
      };
      await waitFor(out, 3000);
      const outAfter = Date.now() - killedAt;
      await sleep(500);
      // On a loaded machine 8 workers may not reach 100 answers in that time: go on until they do (bounded).
      const deadline = Date.now() + 10_000;
      while (ok <= 100 && Date.now() < deadline) await sleep(50);
      stop = true;
      await Promise.all(workers);
      assert.deepEqual(failures, []);
      assert.ok(ok > 100, `only ${ok} requests`);
      assert.ok(outAfter <= 1000, `dead clone out after ${outAfter} ms`);
    } finally {
      await lb.close();
      for (const c of clones) c.kill();
    }
  });

  test('a connection refused is retried on another clone whatever the method', async () => {
    const live = await startUpstream('live');
    const dead = await startUpstream('dead');
    await dead.close();
    const { lb, url } = await startBalancer({
      algorithm: 'round-robin',
      passive: { enabled: false },
      targets: [
        { id: 'dead', url: dead.url },
        { id: 'live', url: live.url },
      ],
    });
    try {
      for (let i = 0; i < 10; i++) {
        const res = await fetchText(`${url}/order`, {
          method: 'POST',
          body: `{"n":${i}}`,
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(res.status, 200);
        assert.equal(JSON.parse(res.body).body, `{"n":${i}}`, 'the body is replayed');
      }
      assert.match(lb.metrics(), /clones_balancer_retries_total\{reason="not-delivered"\} 5/);
    } finally {
      await lb.close();
      await live.close();
    }
  });

  test('after the request reached a clone: GET and Idempotency-Key requests are retried, a bare POST is not', async () => {
    let resets = 0;
    const flaky = await startUpstream('flaky', (req, res) => {
      resets++;
      req.socket.destroy();
      void res;
    });
    const good = await startUpstream('good');
    const { lb, url } = await startBalancer({
      algorithm: 'round-robin',
      passive: { enabled: false },
      targets: [
        { id: 'flaky', url: flaky.url },
        { id: 'good', url: good.url },
      ],
    });
    try {
      const agent = false;
      const post = await Promise.all(
        [0, 1].map(() => fetchText(`${url}/pay`, { method: 'POST', body: 'x', agent })),
      );
      assert.deepEqual(post.map((r) => r.status).sort(), [200, 502]);
      assert.equal(
        JSON.parse(post.find((r) => r.status === 502)!.body).error.code,
        'CLONES_BALANCER_UPSTREAM_ERROR',
      );
      const keyed = await Promise.all(
        [0, 1].map(() =>
          fetchText(`${url}/pay`, { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k1' }, agent }),
        ),
      );
      assert.deepEqual(
        keyed.map((r) => r.status),
        [200, 200],
      );
      const gets = await Promise.all([0, 1].map(() => fetchText(`${url}/`, { agent })));
      assert.deepEqual(
        gets.map((r) => r.status),
        [200, 200],
      );
      assert.ok(resets >= 3);
    } finally {
      await lb.close();
      await flaky.close();
      await good.close();
    }
  });

  test('a reset on a reused upstream socket (keep-alive race) is retried even for POST', async () => {
    // A clone that answers the first request on each connection and resets the connection on the next one,
    // as a server does when it closes an idle socket just as a request arrives.
    const sockets = new Set<Socket>();
    const raw = createServer((socket) => {
      sockets.add(socket);
      let served = 0;
      socket.on('data', () => {
        if (served++ === 0)
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
        else socket.resetAndDestroy();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as { port: number }).port;
    const { lb, url } = await startBalancer({ targets: [{ id: 'raw', url: `http://127.0.0.1:${port}` }] });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetchText(`${url}/`, { method: 'POST', body: 'x' });
        assert.equal(res.status, 200, res.body);
      }
      assert.match(lb.metrics(), /clones_balancer_retries_total\{reason="not-delivered"\} 2/);
    } finally {
      await lb.close();
      for (const s of sockets) s.destroy();
      raw.close();
    }
  });

  test('the retry budget (20% of active requests, min 3) stops a retry storm', async () => {
    const budget = new RetryBudget(20, 3);
    assert.ok(budget.tryAcquire(1) && budget.tryAcquire(1) && budget.tryAcquire(1));
    assert.equal(budget.tryAcquire(1), false, 'min 3');
    assert.equal(budget.tryAcquire(20), true, '20% of 20 is 4');
    assert.equal(budget.tryAcquire(20), false);
    budget.release();
    assert.equal(budget.tryAcquire(20), true);

    let attempts = 0;
    const slowFail = async (id: string) =>
      startUpstream(id, (req) => {
        attempts++;
        setTimeout(() => req.socket.destroy(), 150);
      });
    const ups = [await slowFail('a'), await slowFail('b'), await slowFail('c')];
    const { lb, url } = await startBalancer({
      passive: { enabled: false },
      targets: ups.map((u) => ({ id: u.id, url: u.url })),
    });
    try {
      const counts = await load(30, 30, async () =>
        String((await fetchText(`${url}/`, { agent: false })).status),
      );
      assert.equal(counts.get('502'), 30);
      assert.ok(
        attempts <= 30 + 6 * 2,
        `${attempts} attempts for 30 requests; without a budget it would be 90`,
      );
    } finally {
      await lb.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });
});
