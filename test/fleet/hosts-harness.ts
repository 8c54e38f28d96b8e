// Shared by the fleet-across-hosts tests: 3 test hosts (test/harness/hosts.ts) with sessions in Redis on the
// cache host, a temp copy of examples/shop whose clones.json lists them, and `clones up` of it (2 clones a
// host, the balancer here). Each test file starts its own set and leaves the fleet serving between tests.
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestHosts, type TestHosts } from '../harness/hosts.ts';
import { startUp, status, tempApp, type Up, useTestHosts } from './fleet-harness.ts';

/** `clones status --json` of a fleet across hosts. */
export type HostsStatus = Omit<ReturnType<typeof status>, 'clones'> & {
  hosts: { name: string; reachable: boolean; inService: boolean; release: string | null; clones: number }[];
  clones: {
    id: string;
    host: string;
    release: string;
    pid: number;
    port: number;
    state: string;
    health: string;
  }[];
};

export const hostsStatus = (dir: string) => status(dir) as unknown as HostsStatus;

/** The flags every `clones up` of these tests takes. */
export const UP_ARGS = ['--drain-timeout', '2s', '--ready-timeout', '20s'];

/** Starts 3 test hosts and the cache host, and `clones up` of `app` across them. */
export async function startHostsFleet(dir: string, app: string): Promise<{ hosts: TestHosts; up: Up }> {
  const hosts = await startTestHosts({ count: 3, cache: true });
  try {
    useTestHosts(app, hosts);
    return { hosts, up: await startUp(dir, UP_ARGS) };
  } catch (err) {
    await hosts.stop();
    throw err;
  }
}

/** The NDJSON events a `--json` command printed. */
export function events(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(250);
  }
}

/**
 * A test file's fleet across hosts: registers the before/after hooks that start and stop it. `up` may be
 * replaced by a test (a restarted `clones up`); the after hook stops whichever runs then.
 *
 * @example
 *   const f = hostsFleet();
 *   test('...', async () => { await get(f.up.port, '/'); });
 */
export function hostsFleet(): {
  dir: string;
  app: string;
  hosts: TestHosts;
  up: Up;
  status(): HostsStatus;
} {
  const { dir, app, cleanup } = tempApp();
  const f = { dir, app, status: () => hostsStatus(dir) } as ReturnType<typeof hostsFleet>;
  before(async () => {
    Object.assign(f, await startHostsFleet(dir, app));
  });
  after(async () => {
    await f.up?.stop();
    await f.hosts?.stop();
    cleanup();
  });
  return f;
}
