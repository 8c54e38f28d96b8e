// Shared by the fleet-across-hosts tests: 3 test hosts (test/harness/hosts.ts) with sessions in Redis on the
// cache host, a temp copy of examples/shop whose clones.json lists them, and `clones up` of it (2 clones a
// host, the balancer here). Each test file starts its own set and leaves the fleet serving between tests.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestHosts, type TestHosts } from '../harness/hosts.ts';
import { startUp, status, tempApp, type Up, useTestHosts } from './fleet-harness.ts';

/** `clones status --json` of a fleet across hosts. */
export type HostsStatus = Omit<ReturnType<typeof status>, 'clones'> & {
  hosts: {
    name: string;
    reachable: boolean;
    inService: boolean;
    release: string | null;
    clones: number;
    clonesWanted: number;
  }[];
  clonesWanted: number;
  clones: {
    id: string;
    host: string;
    release: string;
    pid: number;
    port: number;
    state: string;
    health: string;
    startedAt?: string;
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
  /** node:test's `test`; a failure also shows what every host logged (a CI run shows only the report). */
  test(name: string, fn: () => Promise<void>): void;
} {
  const { dir, app, cleanup } = tempApp();
  const f = {
    dir,
    app,
    status: () => hostsStatus(dir),
    test: (name: string, fn: () => Promise<void>) => {
      test(name, async () => {
        try {
          await fn();
        } catch (err) {
          if (err instanceof Error) err.message += `\n${hostsDiagnosis(f.hosts, f.up)}`;
          throw err;
        }
      });
    },
  } as ReturnType<typeof hostsFleet>;
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

/** The last lines each host logged (its agent, its sshd) and what `clones up` printed, for a failed test. */
export function hostsDiagnosis(hosts: TestHosts | undefined, up: Up | undefined, lines = 25): string {
  const tail = (file: string) => {
    if (!existsSync(file)) return '  (no such file)';
    return readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `  ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`)
      .join('\n');
  };
  const out = ['--- what the hosts logged ---'];
  for (const h of hosts?.hosts ?? []) {
    const home = join(h.dir, 'clones');
    const files = ['agent.pid', 'agent-keeper.pid', 'agent-clones.json'].filter((n) =>
      existsSync(join(home, n)),
    );
    out.push(`${h.name}: ${files.join(', ') || 'no agent files'}`);
    out.push(`${h.name} logs/agent.log:`, tail(join(home, 'logs/agent.log')));
    out.push(`${h.name} sshd.log:`, tail(join(dirname(h.dir), 'sshd.log')));
  }
  const printed = up?.output().trimEnd().split('\n').slice(-lines) ?? [];
  out.push('clones up printed:', ...printed.map((l) => `  ${l}`));
  return out.join('\n');
}
