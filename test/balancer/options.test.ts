import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balancerDefaults, createBalancer, resolveOptions } from '../../src/balancer/index.ts';
import { silent } from './helpers.ts';

test('options are validated once, with messages that name the option', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ algorithm: 'random' }, /^algorithm: must be one of/],
    [{ healthCheck: { interval: -1 } }, /^healthCheck\.interval:/],
    [{ healthCheck: { matcher: '200-abc' } }, /^healthCheck\.matcher:/],
    [{ sticky: { duration: 500 } }, /^sticky\.duration: must be a number from 1000 to 604800000/],
    [{ sticky: { duration: 8 * 86_400_000 } }, /^sticky\.duration:/],
    [{ sticky: { secret: 'short' } }, /^sticky\.secret:/],
    [{ sticky: { enabled: true, mode: 'app' } }, /^sticky\.appCookie:/],
    [{ groupStickiness: { duration: 0 } }, /^groupStickiness\.duration:/],
    [{ groups: { blue: 1001 } }, /^groups\.blue:/],
    [{ trustedProxies: ['10.0.0.0/33'] }, /^trustedProxies:/],
    [{ admin: { port: 9000 } }, /^admin\.token:/],
    [{ retries: { attempts: 1.5 } }, /^retries\.attempts: must be a whole number/],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => resolveOptions({ logger: silent, ...options } as never),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CLONES_INVALID_OPTION');
        assert.match(err.message, message);
        return true;
      },
    );
  }
});

test('every wrong option is reported at once, a line each, in the order they are checked', () => {
  assert.throws(
    () =>
      resolveOptions({
        logger: silent,
        healthCheck: { interval: -1 },
        retries: { attempts: 1.5 },
        sticky: { secret: 12 },
        trustedProxies: 'x',
        tls: { cert: 'a.pem' },
      } as never),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_INVALID_OPTION');
      assert.deepEqual(
        err.message.split('\n').map((line) => line.split(':')[0]),
        ['healthCheck.interval', 'retries.attempts', 'sticky.secret', 'trustedProxies', 'tls.key'],
      );
      return true;
    },
  );
});

test('resolved options are frozen and carry the defaults', () => {
  const o = resolveOptions({ logger: silent });
  assert.ok(Object.isFrozen(o) && Object.isFrozen(o.healthCheck) && Object.isFrozen(o.sticky));
  assert.equal(o.algorithm, 'least-outstanding');
  assert.equal(o.healthCheck.interval, 5000);
  assert.equal(o.healthCheck.timeout, 2000);
  assert.equal(o.passive.consecutiveFailures, 5);
  assert.equal(o.sticky.enabled, false);
  assert.equal(o.sticky.duration, 86_400_000);
  assert.equal(o.drain.deadline, 30_000);
  assert.ok(o.healthCheck.matcher(399) && !o.healthCheck.matcher(400));
  assert.equal(balancerDefaults.retries.budgetPercent, 20);
});

test('addTarget validates the target and names the field', () => {
  const lb = createBalancer({ logger: silent, healthCheck: { enabled: false } });
  assert.throws(() => lb.addTarget({ id: 'x', url: 'not a url' }), /^Error: url:|url:/);
  assert.throws(() => lb.addTarget({ id: 'bad id!', url: 'http://127.0.0.1:1' }), /id:/);
  assert.throws(() => lb.addTarget({ id: 'x', url: 'http://127.0.0.1:1', weight: 0 }), /weight:/);
  lb.addTarget({ id: 'x', url: 'http://127.0.0.1:1' });
  assert.throws(
    () => lb.addTarget({ id: 'x', url: 'http://127.0.0.1:2' }),
    (e: Error & { code?: string }) => e.code === 'CLONES_BALANCER_DUPLICATE_TARGET',
  );
  void lb.close();
});
