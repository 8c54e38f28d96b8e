import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { removeTree } from '../../src/fleet/release.ts';
import { cli } from '../fleet/fleet-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'clones-cli-'));
after(() => removeTree(dir));

test('clones --help and per-verb help exit 0', () => {
  const top = cli(dir, ['--help']);
  assert.equal(top.code, 0);
  for (const verb of ['up', 'deploy', 'rollback', 'scale', 'status', 'releases', 'balancer']) {
    assert.match(top.stdout, new RegExp(`\\b${verb}\\b`));
    const r = cli(dir, [verb, '--help']);
    assert.equal(r.code, 0, verb);
    assert.match(r.stdout, new RegExp(`^Usage: clones ${verb}`), verb);
  }
});

test('bad input: a clear message with a CLONES_* code, exit 2, no stack trace', () => {
  const cases = [
    ['nope'],
    ['up', '--clones', 'many'],
    ['up', '--bogus'],
    ['up', 'a', 'b'],
    ['deploy', '--strategy', 'yolo'],
    ['deploy', '--steps', '50,10'],
    ['scale'],
    ['scale', '-3'],
    ['balancer'],
    ['up', '--ready-timeout', 'soon'],
    ['up', '--sticky', '500ms'],
    ['up', '--env', 'NOEQUALS'],
    ['deploy', '--sticky', '0s'],
    ['deploy', '--sticky', '8d'],
    ['deploy', '--sticky', 'soon'],
    ['deploy', '--env', '=value'],
  ];
  for (const args of cases) {
    const r = cli(dir, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /CLONES_USAGE/, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, args.join(' '));
  }
});

test('commands that need a running fleet say so, exit 1', () => {
  for (const args of [['status'], ['scale', '2'], ['rollback'], ['deploy']]) {
    const r = cli(dir, args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /CLONES_FLEET_NOT_RUNNING/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  const r = cli(dir, ['up', join(dir, 'missing-app'), '--port', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /CLONES_FLEET_APP_DIR/);
});

test('clones releases works without a running fleet', () => {
  const r = cli(dir, ['releases', '--json']);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), { releases: [] });
});
