import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyEvent, applyStatus, durationText, newView, renderTable } from '../../src/cli/deploy-table.ts';
import { createProgress, LiveTable } from '../../src/cli/live-progress.ts';
import type { FleetStatus } from '../../src/fleet/index.ts';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);

function canaryView() {
  const view = newView('deploy', 1000);
  applyEvent(view, { type: 'deploy', action: 'deploy', release: NEW, from: OLD, strategy: 'canary' }, 1000);
  for (const id of ['c1', 'c2'])
    applyEvent(
      view,
      { type: 'clone', clone: id, release: OLD, state: 'serving', port: 4000 + Number(id[1]) },
      1000,
    );
  applyEvent(
    view,
    {
      type: 'desired',
      release: OLD,
      epoch: 2,
      clones: 2,
      canary: { release: NEW, clones: 1 },
      strategy: 'canary',
      weights: { [OLD]: 90, [NEW]: 10 },
      sticky: 3_600_000,
    },
    1000,
  );
  applyEvent(view, { type: 'clone', clone: 'c10', release: NEW, state: 'starting', port: 4010 }, 1000);
  applyEvent(view, { type: 'step', weight: 10, wait: 30_000 }, 1000);
  return view;
}

test('renderTable: a header, then one row per clone with release, group share, state, health, port, in-flight', () => {
  const view = canaryView();
  const lines = renderTable(view, 13_500);
  assert.equal(
    lines[0],
    'deploy canary  aaaaaaaaaaaa -> bbbbbbbbbbbb  step 10%  weights aaaaaaaaaaaa=90 bbbbbbbbbbbb=10  sticky 1h  12.5 s',
  );
  assert.deepEqual(lines.slice(1), [
    'CLONE  RELEASE       GROUP       STATE     HEALTH  PORT  IN-FLIGHT',
    'c1     aaaaaaaaaaaa  old 90%     serving   -       4001  -',
    'c2     aaaaaaaaaaaa  old 90%     serving   -       4002  -',
    'c10    bbbbbbbbbbbb  canary 10%  starting  -       4010  -',
  ]);
  assert.deepEqual(renderTable(view, 13_500), lines, 'pure: same view and clock, same lines');
  // Promotion: the record that makes the new release the desired one ends the steps.
  applyEvent(view, {
    type: 'desired',
    release: NEW,
    epoch: 3,
    clones: 2,
    strategy: 'canary',
    weights: {},
    canary: null,
    sticky: 3_600_000,
  });
  const promoted = renderTable(view, 13_500);
  assert.equal(promoted[0], 'deploy canary  aaaaaaaaaaaa -> bbbbbbbbbbbb  sticky 1h  12.5 s');
  assert.match(promoted.at(-1)!, /^c10\s+bbbbbbbbbbbb\s+new\s+starting/);
});

test('status polls fill in health and in-flight, but never undo a newer event', () => {
  const view = canaryView();
  const status = {
    clones: [
      { id: 'c1', release: OLD, state: 'serving', port: 4001, health: 'healthy', inFlight: 3 },
      { id: 'c10', release: NEW, state: 'serving', port: 4010, health: 'healthy', inFlight: 0 },
    ],
    groups: [
      { name: OLD.slice(0, 12), weight: 50, targets: 1, healthy: 1 },
      { name: NEW.slice(0, 12), weight: 50, targets: 1, healthy: 1 },
    ],
  } as unknown as FleetStatus;
  applyEvent(view, { type: 'clone', clone: 'c1', release: OLD, state: 'draining' }, 5000);
  applyStatus(view, status, 4000); // asked for before c1 started draining
  const lines = renderTable(view, 6000);
  assert.match(lines[0]!, /weights aaaaaaaaaaaa=50 bbbbbbbbbbbb=50/);
  assert.match(lines.find((l) => l.startsWith('c1 '))!, /old 50%\s+draining\s+-\s+4001/);
  assert.match(lines.find((l) => l.startsWith('c2 '))!, /stopped/, 'gone from the status: stopped');
  assert.match(lines.find((l) => l.startsWith('c10'))!, /canary 50%\s+serving\s+healthy\s+4010\s+0$/);
});

test('renderTable: a failed clone shows its reason; more clones than the screen holds are summed up', () => {
  const view = newView('deploy', 0);
  applyEvent(view, { type: 'deploy', action: 'deploy', release: NEW, from: OLD, strategy: 'rolling' });
  for (let i = 1; i <= 30; i++)
    applyEvent(view, { type: 'clone', clone: `c${i}`, release: OLD, state: 'serving' });
  applyEvent(view, {
    type: 'clone',
    clone: 'c31',
    release: NEW,
    state: 'failed',
    reason: 'GET /up did not answer 200\nlog',
  });
  const full = renderTable(view, 0);
  assert.equal(full.length, 2 + 31);
  assert.match(full.at(-1)!, /^c31\s+bbbbbbbbbbbb\s+new\s+failed\s+-\s+-\s+-\s+GET \/up did not answer 200$/);
  const cut = renderTable(view, 0, 10);
  assert.equal(cut.length, 10);
  assert.equal(cut.at(-1), '... 24 more clone(s)');
  assert.equal(durationText(3_600_000), '1h');
  assert.equal(durationText(90_000), '90s');
});

test('on a terminal the table is redrawn in place; NDJSON and pipes get no table', async () => {
  const chunks: string[] = [];
  const out = { isTTY: true, rows: 40, columns: 120, write: (c: string) => chunks.push(c) };
  const progress = createProgress({ json: false, action: 'deploy', out, env: { TERM: 'xterm' } });
  assert.ok(progress instanceof LiveTable);
  progress.event({ type: 'deploy', action: 'deploy', release: NEW, from: OLD, strategy: 'rolling' });
  progress.event({ type: 'clone', clone: 'c4', release: NEW, state: 'starting', port: 4004 });
  await sleep(150);
  progress.event({ type: 'clone', clone: 'c4', release: NEW, state: 'serving', port: 4004 });
  await progress.close();
  const text = chunks.join('');
  // History lines stay; the table (header + column names + 1 row = 3 lines) is erased and redrawn.
  assert.match(text, /deploy aaaaaaaaaaaa -> bbbbbbbbbbbb \(rolling\)\n/);
  assert.ok(text.includes('\r\u001b[3A\u001b[J'), 'cursor up over the 3 table lines, then clear');
  assert.ok(text.includes('\u001b[2Kc4 '), 'each table line is cleared before it is written');
  const last = chunks.at(-1)!;
  assert.match(last, /c4\s+bbbbbbbbbbbb\s+new\s+serving/);
  progress.event({ type: 'clone', clone: 'c5', release: NEW, state: 'starting' });
  assert.equal(chunks.at(-1), last, 'nothing is drawn after close');

  for (const options of [
    { json: true },
    { json: false, out: { ...out, isTTY: false } },
    { json: false, env: { TERM: 'dumb' } },
  ]) {
    const p = createProgress({ action: 'deploy', out, env: {}, ...options });
    assert.equal(p instanceof LiveTable, false, JSON.stringify(options));
  }
});
