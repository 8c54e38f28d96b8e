import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fetchText, load, startBalancer, startUpstream, waitFor } from './helpers.ts';

const fast = { enabled: true, interval: 40, transitionInterval: 20, jitter: 0, timeout: 200 };

describe('balancer: active health checks', () => {
  test('a new target enters after 2 passes; leaves after 3 failures; returns after 2 passes', async () => {
    let up = true;
    const a = await startUpstream('a', (req, res) => {
      if (req.url === '/up') res.statusCode = up ? 200 : 503;
      res.end('a');
    });
    const { lb } = await startBalancer({ healthCheck: fast, targets: [{ id: 'a', url: a.url }] });
    const health = () => lb.state().targets[0]!.health;
    try {
      assert.equal(health(), 'unknown');
      await waitFor(() => health() === 'healthy', 2000);
      up = false;
      const left = await waitFor(() => health() === 'unhealthy', 2000);
      assert.ok(left >= 40, `left after ${left} ms: needs 3 failed checks`);
      up = true;
      await waitFor(() => health() === 'healthy', 2000);
      assert.match(lb.metrics(), /clones_balancer_health_transitions_total\{target="a",to="unhealthy"\} 1/);
    } finally {
      await lb.close();
      await a.close();
    }
  });

  test('the matcher decides what passes', async () => {
    const a = await startUpstream('a', (_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    const { lb } = await startBalancer({
      healthCheck: { ...fast, matcher: '200-299,404' },
      targets: [{ id: 'a', url: a.url }],
    });
    try {
      await waitFor(() => lb.state().targets[0]!.health === 'healthy', 2000);
    } finally {
      await lb.close();
      await a.close();
    }
  });

  test('panic: with fewer than half healthy, every target gets traffic; switched off, only healthy ones', async () => {
    const ups = await Promise.all(
      ['a', 'b', 'c'].map((id) =>
        startUpstream(id, (req, res) => {
          if (req.url === '/up' && id !== 'a') res.statusCode = 503;
          res.end(id);
        }),
      ),
    );
    const targets = ups.map((u) => ({ id: u.id, url: u.url }));
    for (const panic of [true, false]) {
      const { lb, url } = await startBalancer({ panic, healthCheck: fast, targets });
      try {
        await waitFor(
          () =>
            lb.state().targets.filter((t) => t.health === 'unhealthy').length === 2 &&
            lb.state().targets[0]!.health === 'healthy',
          2000,
        );
        assert.equal(lb.state().groups[0]!.panic, panic);
        const counts = await load(
          60,
          4,
          async () => (await fetchText(`${url}/`)).headers['x-clones-clone'] as string,
        );
        if (panic) assert.equal(counts.size, 3, `panic routes to all: ${[...counts]}`);
        else assert.deepEqual([...counts], [['a', 60]]);
      } finally {
        await lb.close();
      }
    }
    await Promise.all(ups.map((u) => u.close()));
  });
});

describe('balancer: passive health (ejection)', () => {
  test('5 consecutive 503s eject a target; never more than half a group', async () => {
    const bad = (id: string) =>
      startUpstream(id, (_req, res) => {
        res.statusCode = 503;
        res.end(id);
      });
    const ups = [await bad('x'), await bad('y'), await startUpstream('ok')];
    const { lb, url } = await startBalancer({
      algorithm: 'round-robin',
      targets: ups.map((u) => ({ id: u.id, url: u.url })),
    });
    try {
      for (let i = 0; i < 30; i++) await fetchText(`${url}/`);
      const ejected = lb
        .state()
        .targets.filter((t) => t.ejected)
        .map((t) => t.id);
      assert.equal(ejected.length, 1, `ejected: ${ejected}`);
      assert.ok(['x', 'y'].includes(ejected[0] as string));
      assert.match(lb.metrics(), /clones_balancer_ejections_total\{target="[xy]"\} 1/);
      const until = Date.parse(lb.state().targets.find((t) => t.ejected)!.ejectedUntil as string);
      assert.ok(until - Date.now() > 25_000 && until - Date.now() <= 30_000, 'first ejection lasts 30 s');
    } finally {
      await lb.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });
});
