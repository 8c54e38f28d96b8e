// JobGate orders a host agent's work: `alone` jobs wait for every job queued before them, `shared` jobs overlap
// each other but wait for the `alone` jobs queued before them. Ordering is asserted with promises the test
// releases by hand, never with timings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobGate } from '../../src/fleet/job-gate.ts';

/** A job the test finishes by hand; `started` tells whether the gate has run it yet. */
function manualJob(name: string, log: string[]) {
  let finish!: (value: string) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const job = {
    started: false,
    run: () => {
      job.started = true;
      log.push(`start ${name}`);
      return done.then((v) => {
        log.push(`end ${name}`);
        return v;
      });
    },
    finish: () => finish(name),
    fail: (err: Error) => fail(err),
  };
  return job;
}

/** Lets every promise reaction that can run, run (a macrotask turn drains the microtask queue). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('shared jobs overlap each other', async () => {
  const gate = new JobGate();
  const log: string[] = [];
  const a = manualJob('a', log);
  const b = manualJob('b', log);
  const ra = gate.shared(a.run);
  const rb = gate.shared(b.run);
  await settle();
  assert.ok(a.started && b.started, 'both run before either ends');
  b.finish();
  a.finish();
  assert.deepEqual(await Promise.all([ra, rb]), ['a', 'b']);
  assert.deepEqual(log, ['start a', 'start b', 'end b', 'end a']);
});

test('an alone job waits for every shared job queued before it; shared jobs after it wait for it', async () => {
  const gate = new JobGate();
  const log: string[] = [];
  const s1 = manualJob('s1', log);
  const s2 = manualJob('s2', log);
  const lone = manualJob('lone', log);
  const s3 = manualJob('s3', log);
  const r1 = gate.shared(s1.run);
  const r2 = gate.shared(s2.run);
  const rl = gate.alone(lone.run);
  const r3 = gate.shared(s3.run);
  await settle();
  assert.ok(s1.started && s2.started);
  assert.equal(lone.started, false, 'alone waits for the shared jobs before it');
  assert.equal(s3.started, false, 'a shared job queued after an alone job waits for it');
  s1.finish();
  await settle();
  assert.equal(lone.started, false, 'still one shared job running');
  s2.finish();
  await settle();
  assert.ok(lone.started);
  assert.equal(s3.started, false, 'the alone job runs alone');
  lone.finish();
  await settle();
  assert.ok(s3.started);
  s3.finish();
  assert.deepEqual(await Promise.all([r1, r2, rl, r3]), ['s1', 's2', 'lone', 's3']);
  assert.deepEqual(log, [
    'start s1',
    'start s2',
    'end s1',
    'end s2',
    'start lone',
    'end lone',
    'start s3',
    'end s3',
  ]);
});

test('alone jobs run one after another, in the order they were queued', async () => {
  const gate = new JobGate();
  const log: string[] = [];
  const first = manualJob('first', log);
  const second = manualJob('second', log);
  const r1 = gate.alone(first.run);
  const r2 = gate.alone(second.run);
  await settle();
  assert.ok(first.started);
  assert.equal(second.started, false);
  first.finish();
  await settle();
  assert.ok(second.started);
  second.finish();
  await Promise.all([r1, r2]);
  assert.deepEqual(log, ['start first', 'end first', 'start second', 'end second']);
});

test('a failed job rejects only its own caller; the jobs after it still run', async () => {
  const gate = new JobGate();
  const log: string[] = [];
  const shared = manualJob('shared', log);
  const lone = manualJob('lone', log);
  const after = manualJob('after', log);
  const rs = gate.shared(shared.run);
  const rl = gate.alone(lone.run);
  const ra = gate.shared(after.run);
  await settle();
  shared.fail(new Error('start failed'));
  await assert.rejects(rs, /start failed/);
  await settle();
  assert.ok(lone.started, 'a failed shared job still lets the alone job after it run');
  lone.fail(new Error('converge failed'));
  await assert.rejects(rl, /converge failed/);
  await settle();
  assert.ok(after.started, 'a failed alone job still lets the next job run');
  after.finish();
  assert.equal(await ra, 'after');
});
