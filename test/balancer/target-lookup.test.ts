import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silent, startBalancer, startUpstream, waitFor } from './helpers.ts';

// balancer.target(id): one target's state without building the whole state(), the same on both engines.
for (const engine of ['builtin', 'haproxy'] as const) {
  describe(`balancer.target(id) (${engine} engine)`, () => {
    test('is what state() reports for that target, follows its transitions, undefined when unknown', async () => {
      const up = await startUpstream('a');
      const { lb } = await startBalancer({
        engine,
        logger: silent,
        healthCheck: { enabled: true, interval: 100, transitionInterval: 50, healthyThreshold: 1 },
        targets: [],
      });
      try {
        assert.equal(lb.target('a'), undefined);
        lb.addTarget({ id: 'a', url: up.url, group: 'g', release: 'r1' });
        await lb.settled?.();
        await waitFor(() => lb.target('a')?.health === 'healthy', 10_000);
        const one = lb.target('a')!;
        assert.deepEqual(
          one,
          lb.state().targets.find((t) => t.id === 'a'),
        );
        assert.equal(one.release, 'r1');
        assert.equal(one.draining, false);
        await lb.drain('a', { deadline: 1000 });
        assert.equal(lb.target('a')?.draining, true);
        await lb.removeTarget('a', { deadline: 1000 });
        assert.equal(lb.target('a'), undefined);
      } finally {
        await lb.close();
        await up.close();
      }
    });
  });
}
