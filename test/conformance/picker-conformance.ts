import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { BalancerOptions, Candidate, Picker, PickerName } from '../../src/balancer/index.ts';
import { fetchText, load, startBalancer, startUpstream, waitFor } from '../balancer/helpers.ts';

interface T extends Candidate {
  id: string;
  weight: number;
  outstanding: number;
}

const target = (id: string, weight = 1, outstanding = 0): T => ({ id, weight, outstanding });

function count(picker: Picker, candidates: T[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const t = picker.pick(candidates);
    counts.set(t.id, (counts.get(t.id) ?? 0) + 1);
  }
  return counts;
}

function assertShare(
  counts: Map<string, number>,
  id: string,
  expected: number,
  total: number,
  tolerance = 0.05,
): void {
  const got = (counts.get(id) ?? 0) / total;
  assert.ok(
    Math.abs(got - expected) <= expected * tolerance,
    `${id}: share ${got.toFixed(4)}, expected ${expected.toFixed(4)} ±${tolerance * 100}%`,
  );
}

/**
 * The suite every load-balancing algorithm must pass, on its own and behind a real balancer.
 * `loadAware: false` skips the cases about in-flight counts (round-robin does not look at them, by design).
 *
 * @example
 *   pickerConformance('round-robin', () => roundRobin(), { loadAware: false });
 */
export function pickerConformance(name: PickerName, make: () => Picker, { loadAware = true } = {}): void {
  describe(`picker conformance: ${name}`, () => {
    test('10,000 picks over 3 equal targets: each within 5% of a third', () => {
      const counts = count(make(), [target('a'), target('b'), target('c')], 10_000);
      for (const id of ['a', 'b', 'c']) assertShare(counts, id, 1 / 3, 10_000);
    });

    test('weights 1:2:3 give shares 1/6, 2/6, 3/6 (within 5%)', () => {
      const counts = count(make(), [target('a', 1), target('b', 2), target('c', 3)], 12_000);
      assertShare(counts, 'a', 1 / 6, 12_000);
      assertShare(counts, 'b', 2 / 6, 12_000);
      assertShare(counts, 'c', 3 / 6, 12_000);
    });

    test('only ever returns one of the candidates it is given, and copes with one', () => {
      const picker = make();
      const all = [target('a'), target('b'), target('c')];
      for (let i = 0; i < 100; i++) assert.ok(all.includes(picker.pick(all)));
      const subset = [all[1]!];
      for (let i = 0; i < 10; i++) assert.equal(picker.pick(subset).id, 'b');
      assert.ok(all.includes(picker.pick(all)), 'state from a smaller set does not break a larger one');
    });

    test('a target that leaves and comes back is picked again', () => {
      const picker = make();
      count(picker, [target('a'), target('b')], 100);
      const counts = count(picker, [target('a'), target('b'), target('c')], 3000);
      assertShare(counts, 'c', 1 / 3, 3000, 0.1);
    });

    test('steers away from a loaded target', {
      skip: loadAware ? false : 'round-robin ignores load by design',
    }, () => {
      const counts = count(make(), [target('a', 1, 10), target('b', 1, 0), target('c', 1, 0)], 3000);
      assert.ok((counts.get('a') ?? 0) < 3000 * 0.2, `loaded target got ${counts.get('a')}`);
    });

    describe('behind a balancer, real requests', async () => {
      const ups = await Promise.all(['a', 'b', 'c'].map((id) => startUpstream(id)));
      const sick = await startUpstream('sick', (_req, res) => {
        res.statusCode = 503;
        res.end('no');
      });
      const options: BalancerOptions = {
        algorithm: name,
        healthCheck: {
          enabled: true,
          interval: 50,
          transitionInterval: 20,
          healthyThreshold: 1,
          unhealthyThreshold: 1,
        },
        targets: [...ups, sick].map((u) => ({ id: u.id, url: u.url })),
      };
      const { lb, url } = await startBalancer(options);
      after(async () => {
        await lb.close();
        await Promise.all([...ups, sick].map((u) => u.close()));
      });

      test('10,000 requests to 3 equal healthy clones: each within 5% of a third; the unhealthy one gets none', async () => {
        await waitFor(() => lb.state().targets.every((t) => t.health !== 'unknown'));
        const counts = await load(
          10_000,
          8,
          async () => (await fetchText(`${url}/`)).headers['x-clones-clone'] as string,
        );
        assert.equal(counts.get('sick'), undefined);
        for (const id of ['a', 'b', 'c']) assertShare(counts, id, 1 / 3, 10_000);
      });
    });
  });
}
