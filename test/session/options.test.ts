import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sessions } from '../../src/session/index.ts';
import { resolveOptions } from '../../src/session/options.ts';

const secret = 'a-secret-that-is-long-enough-for-sessions!';

test('refused at start, each with its code and the option named', () => {
  assert.throws(() => sessions({}), { code: 'CLONES_SESSION_SECRET_WEAK' });
  assert.throws(() => sessions({ secret: [secret, 'short'] }), {
    code: 'CLONES_SESSION_SECRET_WEAK',
    message: /secret\[1\]/,
  });
  assert.throws(() => sessions({ secret, store: 'mongodb://x' }), { code: 'CLONES_SESSION_STORE_URL' });
  assert.throws(() => sessions({ secret, store: 'redis://:hunter2@h:1/0', idleTimeout: -1 }), {
    code: 'CLONES_INVALID_OPTION',
    message: /^idleTimeout/,
  });
  assert.throws(() => sessions({ secret, idleTimeout: 10_000, absoluteTimeout: 5_000 }), {
    message: /^absoluteTimeout/,
  });
  assert.throws(() => sessions({ secret, touchAfter: 1 }), { message: /^touchAfter/ });
  assert.throws(() => sessions({ secret, trustProxy: ['not-an-ip'] }), { message: /^trustProxy/ });
  assert.throws(() => sessions({ secret, name: 'bad name' }), { message: /^name/ });
});

test('a revocation store: only for sealed cookies, and only a server-side store URL', () => {
  assert.throws(() => sessions({ secret, store: 'memory:', revocations: { store: 'memory:' } }), {
    code: 'CLONES_INVALID_OPTION',
    message: /^revocations/,
  });
  assert.throws(() => sessions({ secret, store: 'cookie:', revocations: { store: 'cookie:' } }), {
    message: /^revocations\.store/,
  });
  assert.throws(() => sessions({ secret, store: 'cookie:', revocations: { store: 'mongodb://x' } }), {
    code: 'CLONES_SESSION_STORE_URL',
  });
  assert.throws(
    () => sessions({ secret, store: 'cookie:', revocations: { store: 'memory:', cacheMs: -1 } }),
    {
      message: /^revocations\.cacheMs/,
    },
  );
  // From the environment it applies to sealed cookies only, so one env file can serve both kinds of app.
  assert.equal(resolveOptions({ secret }, { SESSION_REVOCATION_STORE: 'memory:' }).revocations, undefined);
  assert.deepEqual(
    resolveOptions({ secret, store: 'cookie:' }, { SESSION_REVOCATION_STORE: 'memory:' }).revocations,
    { store: 'memory:', cacheMs: 1000 },
  );
});

test('memory: is refused when NODE_ENV=production', () => {
  assert.throws(() => resolveOptions({ secret, store: 'memory:' }, { NODE_ENV: 'production' }), {
    code: 'CLONES_SESSION_MEMORY_IN_PRODUCTION',
  });
  assert.equal(resolveOptions({ secret, store: 'memory:' }, { NODE_ENV: 'test' }).store, 'memory:');
});

test('defaults: SQLite file, secret from SESSION_SECRET (space-separated, newest first)', () => {
  const o = resolveOptions({}, { SESSION_SECRET: `${secret} ${secret}-old` });
  assert.equal(o.store, 'sqlite:.clones/sessions.db');
  assert.deepEqual(o.secrets, [secret, `${secret}-old`]);
  assert.equal(o.cookie.sameSite, 'Lax');
  assert.equal(o.onStoreError, 'fail-closed');
  assert.equal(
    resolveOptions({}, { SESSION_SECRET: secret, SESSION_STORE: 'cookie:' }).name,
    'clones.session',
  );
  assert.ok(Object.isFrozen(o));
});

test('a password in a store URL never shows in the error message', () => {
  try {
    sessions({ secret, store: 'nosuch://user:hunter2@host/0' });
    assert.fail('should throw');
  } catch (err) {
    assert.doesNotMatch((err as Error).message, /hunter2/);
  }
});

test('every wrong option is reported at once: one error, a line each, in the order they are checked', () => {
  assert.throws(
    () =>
      resolveOptions({
        secret,
        idleTimeout: -1,
        touchAfter: 2,
        cookie: { sameSite: 'sideways' as never, httpOnly: 'yes' as never },
        trustProxy: ['not-an-ip', '10.0.0.0/33'],
      }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CLONES_INVALID_OPTION');
      assert.deepEqual(
        err.message.split('\n').map((line) => line.split(':')[0]),
        ['idleTimeout', 'touchAfter', 'cookie.sameSite', 'cookie.httpOnly', 'trustProxy', 'trustProxy'],
      );
      return true;
    },
  );
  // A wrong idleTimeout does not also make the absolute timeout wrong (its default follows idleTimeout).
  assert.throws(() => resolveOptions({ secret, idleTimeout: Number.NaN }), {
    message: /^idleTimeout: [^\n]*$/,
  });
  // Options with a code of their own still come after the wrong options found before them.
  assert.throws(() => resolveOptions({ secret: 'short', nosuch: 1 } as never), {
    code: 'CLONES_INVALID_OPTION',
    message: /^nosuch: unknown option/,
  });
  assert.throws(() => resolveOptions({ secret: 'short', idleTimeout: -1 }), {
    code: 'CLONES_SESSION_SECRET_WEAK',
  });
});
