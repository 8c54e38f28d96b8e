// A balancer config file goes through the same validation as the options: its own problems (unknown keys,
// wrong types, bad durations) and the options' rules come out together, in one error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBalancerConfig, DURATION_OPTIONS } from '../../src/balancer/config-file.ts';
import { balancerDefaults, resolveOptions } from '../../src/balancer/index.ts';
import { OptionIssues } from '../../src/option-issues.ts';
import { silent } from './helpers.ts';

/** checkBalancerConfig then resolveOptions on one list, as `clones balancer --config` does. */
function load(file: Record<string, unknown>) {
  const issues = new OptionIssues();
  const options = checkBalancerConfig(file, issues);
  const resolved = resolveOptions({ logger: silent, ...options }, issues);
  issues.throwIfAny('--config lb.yaml');
  return resolved;
}

test('a duration in a config file may be written as on the command line', () => {
  const o = load({
    healthCheck: { interval: '2s', timeout: '250ms' },
    upstream: { timeout: '2m' },
    sticky: { enabled: true, duration: '1h' },
    groupStickiness: { duration: '7d' },
    drain: { deadline: 45_000 },
    hsts: { maxAge: '365d' },
  });
  assert.equal(o.healthCheck.interval, 2000);
  assert.equal(o.healthCheck.timeout, 250);
  assert.equal(o.upstream.timeout, 120_000);
  assert.equal(o.sticky.duration, 3_600_000);
  assert.equal(o.groupStickiness.duration, 7 * 86_400_000);
  assert.equal(o.drain.deadline, 45_000, 'a plain number is still milliseconds');
});

test('a bad duration is refused with the option named, with every other problem of the file', () => {
  assert.throws(
    () =>
      load({
        healthCheck: { timeout: '5 parsecs', intervl: 5, interval: 1 },
        sticky: { duration: '1ms' },
        upstream: { queueTimeout: '30' },
      }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_INVALID_OPTION');
      const lines = err.message.split('\n');
      assert.equal(lines[0], '--config lb.yaml: 5 error(s):');
      assert.deepEqual(
        lines.slice(1).map((line) => line.trim().split(':')[0]),
        // The file's own problems first, then the options' rules: interval is too short, and '1ms' is a
        // duration that sticky.duration's range (1 s to 7 days) refuses.
        [
          'healthCheck.timeout',
          'healthCheck.intervl',
          'upstream.queueTimeout',
          'healthCheck.interval',
          'sticky.duration',
        ],
      );
      assert.match(lines[1]!, /must be a number \(milliseconds\) or a duration such as 500ms, 30s/);
      assert.match(lines[1]!, /"5 parsecs"/);
      // A unit is required in a file: there a plain number is ms, so "30" would be a trap.
      assert.match(lines[3]!, /upstream\.queueTimeout: .*"30"/);
      return true;
    },
  );
});

test('every option listed as a duration is a number of the defaults', () => {
  for (const path of Object.keys(DURATION_OPTIONS)) {
    const value = path
      .split('.')
      .reduce<unknown>((o, key) => (o as Record<string, unknown>)[key], balancerDefaults);
    assert.equal(typeof value, 'number', path);
  }
});
