// Runs every test with Node's test runner. First makes sure the servers the tests start are installed
// (apt when root, else it stops and names the command); each test file starts its own servers on free
// loopback ports through test/harness and stops them when it ends.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ensureBinary } from '../test/harness/ensure-binary.ts';

const needed: [binary: string, pkg?: string][] = [
  ['redis-server'],
  ['memcached'],
  ['/usr/lib/postgresql/15/bin/postgres', 'postgresql'],
  // Test hosts (test/harness/hosts.ts): network namespaces with their own sshd.
  ['/usr/sbin/sshd', 'openssh-server'],
  ['ip', 'iproute2'],
  // The balancer's HAProxy engine (test/balancer/engine-haproxy.test.ts).
  ['haproxy'],
];
try {
  for (const [binary, pkg] of needed) ensureBinary(binary, pkg);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

/** Files that start test hosts, a browser, npm, or a local fleet under deploys (see `heavy` below). */
const HEAVY =
  /test[\\/](fleet[\\/](hosts-(deploys|extras|failures|late|systemd)|test-hosts|up|deploy-)|dashboard[\\/]|package[\\/]pack)/;

function findTests(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

// Apps in plain JavaScript import clones from dist/ (package.json exports): build it from the sources first.
const build = spawnSync(
  process.execPath,
  [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    stdio: 'inherit',
  },
);
if (build.status !== 0) {
  console.error('npm test: the build (tsc -p tsconfig.build.json) failed');
  process.exit(1);
}

const filter = process.argv.slice(2);
const files = findTests('test')
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .sort();
// The 2-minute soak loads the whole machine (3 hosts, Sentinel, PostgreSQL with replicas, users): it runs on
// its own after the rest, so that neither it nor the timing-sensitive outage tests run beside the other.
const alone = files.filter((f) => f.includes(join('test', 'soak', 'soak-short')));
// The files that start test hosts (network namespaces, each with sshd, an agent and clones), a browser, npm,
// or a local fleet under deploys: one at a time in a lane of their own, beside a lane with the rest (the two
// lanes take about the same time). Run two at a time from one sorted list, neighbours such as hosts-deploys
// and hosts-extras met on 2 cores, and `clones up` in a third file then waited seconds for a health check.
const heavy = files.filter((f) => !alone.includes(f) && HEAVY.test(f));
const light = files.filter((f) => !alone.includes(f) && !heavy.includes(f));

/** Runs `list` one file at a time in one `node --test`; resolves with its exit status and, piped, its report. */
function run(list: string[], out: 'inherit' | 'pipe', timeout = 300_000) {
  if (list.length === 0) return Promise.resolve({ status: 0, report: '' });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${timeout}`, ...list],
    // Library warnings (an outage a test provokes on purpose) would bury the test report; errors still show.
    { stdio: ['ignore', out, 'inherit'], env: { CLONES_LOG_LEVEL: 'error', ...process.env } },
  );
  let report = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (report += chunk));
  return new Promise<{ status: number; report: string }>((resolve) =>
    child.once('close', (code) => resolve({ status: code ?? 1, report })),
  );
}

// The heavy lane's report is printed whole after the other's, so that the two TAP streams do not interleave.
const [lane, heavyLane] = await Promise.all([run(light, 'inherit'), run(heavy, 'pipe')]);
process.stdout.write(heavyLane.report);
const last = await run(alone, 'inherit', 900_000);
process.exit([lane.status, heavyLane.status, last.status].find((s) => s !== 0) ?? 0);
