// The rolling order across hosts, on in-memory hosts (the real ones are in hosts-deploys.test.ts): a host's
// old clones drain while the next batch starts, the version guard never drops the old release while one of
// its clones is listed anywhere, and the rollout returns only after every drain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CloneInfo } from '../../src/fleet/clone-info.ts';
import { acrossHosts, type HostPart } from '../../src/fleet/rollout/across-hosts.ts';
import type { CloneDriver } from '../../src/fleet/rollout/rollout-context.ts';

type Step = { at: number; host: string; what: 'start' | 'started' | 'drain' | 'stopped'; id: string };

/** A host whose clones take `startMs` to start and `drainMs` to drain; `failStop` rejects that clone's stop. */
function memoryHost(
  name: string,
  log: Step[],
  o: { old: number; startMs: number; drainMs: number; failStop?: string },
): CloneDriver & { clones: CloneInfo[] } {
  let n = 0;
  const clone = (release: string, state: CloneInfo['state']): CloneInfo => ({
    id: `${name}-c${++n}`,
    release,
    group: release,
    port: 0,
    pid: null,
    state,
    restarts: 0,
    startedAt: new Date().toISOString(),
    readyMs: null,
  });
  const clones = Array.from({ length: o.old }, () => clone('old', 'serving'));
  const step = (what: Step['what'], id: string) => log.push({ at: performance.now(), host: name, what, id });
  return {
    clones,
    list: () => clones.map((c) => ({ ...c })),
    async start(release) {
      const c = clone(release, 'starting');
      clones.push(c);
      step('start', c.id);
      await sleep(o.startMs);
      c.state = 'serving';
      step('started', c.id);
      return { ...c };
    },
    async stop(id) {
      const c = clones.find((x) => x.id === id)!;
      c.state = 'draining';
      step('drain', id);
      await sleep(o.drainMs);
      if (id === o.failStop) throw new Error(`${id} would not stop`);
      clones.splice(clones.indexOf(c), 1);
      step('stopped', id);
    },
  };
}

function fleet(hosts: string[], o: Parameters<typeof memoryHost>[2]) {
  const log: Step[] = [];
  const drivers = hosts.map((h) => memoryHost(h, log, o));
  const parts: HostPart[] = drivers.map((clones, i) => ({
    name: hosts[i]!,
    clones,
    want: new Map([['new', o.old]]),
  }));
  /** Each guard call, with whether an old clone was still listed on some host when it was made. */
  const guards: { includeOld: boolean; oldListed: boolean }[] = [];
  const guard = (includeOld: boolean) =>
    guards.push({ includeOld, oldListed: drivers.some((d) => d.clones.some((c) => c.release === 'old')) });
  return { log, drivers, parts, guards, guard };
}

test('rolling across hosts: the next host starts while the last one drains; return after every drain', async () => {
  const f = fleet(['h1', 'h2', 'h3'], { old: 2, startMs: 30, drainMs: 150 });
  await acrossHosts(f.parts, { strategy: 'rolling', batch: 1, guard: f.guard, weigh: () => {} });
  const returned = performance.now();
  // Hosts in order: every new clone of h1 serves before any of h2 starts.
  const started = f.log.filter((s) => s.what === 'started').map((s) => s.host);
  assert.deepEqual(started, ['h1', 'h1', 'h2', 'h2', 'h3', 'h3']);
  const first = (host: string, what: Step['what']) => f.log.find((s) => s.host === host && s.what === what)!;
  const last = (host: string, what: Step['what']) =>
    [...f.log].reverse().find((s) => s.host === host && s.what === what)!;
  // h2's new clones start before h1's old ones are gone, and not before h1's new ones serve.
  assert.ok(first('h2', 'start').at < last('h1', 'stopped').at, 'h2 waited for h1 to drain');
  assert.ok(first('h2', 'start').at >= last('h1', 'started').at);
  assert.ok(
    f.log.every((s) => s.at <= returned),
    'returned before a drain ended',
  );
  assert.ok(f.drivers.every((d) => d.clones.every((c) => c.release === 'new' && c.state === 'serving')));
  // The guard drops the old release only when none of its clones is listed anywhere, and ends dropped.
  const dropped = f.guards.filter((g) => !g.includeOld);
  assert.ok(dropped.length > 0);
  assert.deepEqual(
    dropped.filter((g) => g.oldListed),
    [],
  );
  assert.equal(f.guards.at(-1)?.includeOld, false);
});

test('rolling across hosts: a drain that fails is thrown once every other drain has ended', async () => {
  const f = fleet(['h1', 'h2'], { old: 2, startMs: 20, drainMs: 100, failStop: 'h1-c1' });
  await assert.rejects(
    acrossHosts(f.parts, { strategy: 'rolling', batch: 1, guard: f.guard, weigh: () => {} }),
    /h1-c1 would not stop/,
  );
  const rejected = performance.now();
  assert.equal(f.log.filter((s) => s.what === 'stopped').length, 3, 'the other three drains ended');
  assert.ok(f.log.every((s) => s.at <= rejected));
  // The release of a clone that would not stop stays allowed.
  assert.equal(f.guards.filter((g) => !g.includeOld && g.oldListed).length, 0);
});
