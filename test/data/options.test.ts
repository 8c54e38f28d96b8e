// clones/data's options go through the one validation path: every wrong number is reported in one error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { database } from '../../src/data/index.ts';
import type { ClonesError } from '../../src/errors.ts';

test('two wrong options of database() are reported together, each named', () => {
  let err: ClonesError | undefined;
  try {
    database({ primary: 'sqlite::memory:', timeout: 0, ttlJitter: 1.5, poolSize: -1 });
  } catch (e) {
    err = e as ClonesError;
  }
  assert.equal(err?.code, 'CLONES_INVALID_OPTION');
  assert.match(err!.message, /timeout: must be a positive number, got 0/);
  assert.match(err!.message, /poolSize: must be a positive number, got -1/);
  assert.match(err!.message, /ttlJitter: must be in \[0, 1\), got 1\.5/);
});

test('a number given as a string is refused, not taken', () => {
  assert.throws(() => database({ primary: 'sqlite::memory:', timeout: '5' as unknown as number }), {
    code: 'CLONES_INVALID_OPTION',
    message: /timeout: must be a positive number, got 5/,
  });
});
