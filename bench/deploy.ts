// npm run bench:deploy -- the deploy benchmark of issue 4. One `clones up` of a temp copy of examples/shop
// (3 clones, embedded SQLite store) under continuous keep-alive GET load; then, one after another, a rolling,
// a blue-green and a canary deploy of a changed app. Per strategy: the deploy's duration (the CLI's wall
// time, build included, and the rollout time the fleet reports), the failed requests from the deploy's start
// to the end of the measurement, and how many of the AFTER (10,000) responses sent after `deploy` returned
// carry another release than the new one (stale). Writes bench/results/deploy.json.
// Environment: BENCH_CONCURRENCY (4), BENCH_AFTER (10000), BENCH_CANARY_STEPS (10,50,100),
// BENCH_STEP_WAIT (2s).
//
// `npm run bench:deploy -- --hosts 3`: the same on a fleet across 3 test hosts (network namespaces with their
// own sshd, test/harness/hosts.ts; needs root), 2 clones each, sessions in Redis on the cache host, the
// balancer here. It adds the bytes shipped per host: the first time (the clones install plus the release)
// and for each deploy (one changed source file).
//
// `--balancer haproxy` runs the same deploys with the HAProxy engine in front (results in *-haproxy.json).

import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  cliAsync,
  get,
  repo,
  startUp,
  status,
  tempApp,
  touchApp,
  type Up,
  useTestHosts,
} from '../test/fleet/fleet-harness.ts';
import { startTestHosts, type TestHosts } from '../test/harness/hosts.ts';

const hostsFlag = process.argv.indexOf('--hosts');
const HOSTS = hostsFlag >= 0 ? Number(process.argv[hostsFlag + 1]) : 0;
if (hostsFlag >= 0 && !(Number.isInteger(HOSTS) && HOSTS >= 1 && HOSTS <= 20)) {
  console.error('usage: npm run bench:deploy [-- --hosts N]  (N from 1 to 20)');
  process.exit(2);
}

const balancerFlag = process.argv.indexOf('--balancer');
/** `--balancer haproxy`: the same deploys with the HAProxy engine in front (issue 13). */
const ENGINE = balancerFlag >= 0 ? (process.argv[balancerFlag + 1] ?? '') : 'builtin';
if (ENGINE !== 'builtin' && ENGINE !== 'haproxy') {
  console.error('usage: npm run bench:deploy [-- --hosts N] [--balancer builtin|haproxy]');
  process.exit(2);
}
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const AFTER = Number(process.env.BENCH_AFTER ?? (HOSTS > 0 ? 3000 : 10_000));
const CANARY_STEPS = process.env.BENCH_CANARY_STEPS ?? '10,50,100';
const STEP_WAIT = process.env.BENCH_STEP_WAIT ?? '2s';
const RESULTS = join(
  repo,
  'bench',
  'results',
  `${HOSTS > 0 ? 'deploy-hosts' : 'deploy'}${ENGINE === 'haproxy' ? '-haproxy' : ''}.json`,
);

const STRATEGIES = [
  { name: 'rolling', args: ['--strategy', 'rolling'] },
  { name: 'blue-green', args: ['--strategy', 'blue-green'] },
  { name: 'canary', args: ['--strategy', 'canary', '--steps', CANARY_STEPS, '--step-wait', STEP_WAIT] },
] as const;

interface Sample {
  at: number;
  ms: number;
  status: number;
  release: string;
  /** The error code of a failed answer (the body's error.code), or the client's error. */
  error?: string;
}

/** Keep-alive GET /up loops; every response is kept with its send time, latency, status and release. */
function traffic(port: number) {
  const samples: Sample[] = [];
  let running = true;
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (running) {
      const at = Date.now();
      const t0 = performance.now();
      try {
        const r = await get(port, '/up');
        samples.push({
          at,
          ms: performance.now() - t0,
          status: r.status,
          release: String(r.headers['x-clones-release'] ?? ''),
          ...(r.status === 200
            ? {}
            : { error: /"code":"([A-Z_]+)"/.exec(r.body)?.[1] ?? r.body.slice(0, 60) }),
        });
      } catch (err) {
        samples.push({ at, ms: performance.now() - t0, status: 0, release: '', error: String(err) });
      }
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

interface Row {
  strategy: string;
  from: string;
  to: string;
  ok: boolean;
  /** Wall time of `clones deploy`, from spawn to exit: build, rollout, CLI start-up. */
  deployMs: number;
  /** The rollout alone, as the fleet's `done` event reports it. */
  rolloutMs: number | null;
  requestsDuringDeploy: number;
  /** Non-200 or failed responses from the deploy's start to the last of the AFTER responses. */
  failed: number;
  p99MsDuringDeploy: number;
  maxMsDuringDeploy: number;
  responsesAfter: number;
  /** Throughput while the deploy ran and over the AFTER responses: booting clones take CPU from the rest. */
  rpsDuringDeploy: number;
  rpsAfter: number;
  /** What the failed answers were: "status error" -> count. */
  failures: Record<string, number>;
  /** Of the AFTER responses sent once `deploy` returned, those not from the new release. */
  staleAfter: number;
  /** Each event the deploy printed, with when it arrived (ms from the CLI's start). */
  timeline: Record<string, unknown>[];
  /** Across hosts: bytes this deploy shipped to each host (hash list, missing blobs, manifest). */
  bytesPerHost?: Record<string, number>;
}

/** Bytes per host in `host` events of shipping steps (NDJSON lines). */
function shippedBytes(lines: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of lines.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { type: string; host?: string; step?: string; bytes?: number };
    if (e.type === 'host' && e.host && e.bytes && /^(ship|install clones)/.test(e.step ?? ''))
      out[e.host] = (out[e.host] ?? 0) + e.bytes;
  }
  return out;
}

function tallyFailures(failed: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of failed)
    out[`${s.status} ${s.error ?? ''}`] = (out[`${s.status} ${s.error ?? ''}`] ?? 0) + 1;
  return out;
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

async function run(): Promise<void> {
  const { dir, app, cleanup } = tempApp();
  let up: Up | undefined;
  let load: ReturnType<typeof traffic> | undefined;
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const started = Date.now();
  let hosts: TestHosts | undefined;
  let firstBytes: Record<string, number> = {};
  try {
    if (HOSTS > 0) {
      hosts = await startTestHosts({ count: HOSTS, cache: true });
      useTestHosts(app, hosts);
      up = await startUp(dir, [
        '--json',
        '--drain-timeout',
        '3s',
        '--ready-timeout',
        '20s',
        '--balancer',
        ENGINE,
      ]);
      firstBytes = shippedBytes(up.output());
    } else {
      up = await startUp(dir, [
        '--clones',
        '3',
        '--drain-timeout',
        '3s',
        '--ready-timeout',
        '15s',
        '--balancer',
        ENGINE,
      ]);
    }
    load = traffic(up.port);
    await sleep(1500); // warm: every clone has keep-alive connections and JIT-warm paths
    for (const strategy of STRATEGIES) {
      const from = status(dir).release;
      touchApp(app, `bench ${strategy.name} ${Date.now()}`);
      const first = load.samples.length;
      const t0 = Date.now();
      const running = cliAsync(dir, ['deploy', 'shop', '--json', ...strategy.args]);
      // Each event with when it arrived, in ms from the CLI's start: where the deploy's time went.
      type Event = { type: string; release?: string; ms?: number } & Record<string, unknown>;
      const arrived: { ms: number; event: Event }[] = [];
      const take = (line: string) => {
        if (line.trim()) arrived.push({ ms: Date.now() - t0, event: JSON.parse(line) as Event });
      };
      let partial = '';
      running.child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        lines.forEach(take);
      });
      const deploy = await running;
      take(partial);
      const returned = Date.now();
      const events = arrived.map((a) => a.event);
      const done = events.find((e) => e.type === 'done');
      const to = done?.release ?? status(dir).release;
      if (deploy.code !== 0) process.stderr.write(`${strategy.name} deploy failed: ${deploy.stderr}\n`);
      while (load.samples.filter((s) => s.at > returned).length < AFTER) await sleep(100);
      const window = load.samples.slice(first).filter((s) => s.at >= t0);
      const during = window.filter((s) => s.at <= returned);
      const after = window.filter((s) => s.at > returned).slice(0, AFTER);
      const lastAt = after.at(-1)!.at;
      rows.push({
        strategy: strategy.name,
        from,
        to,
        ok: deploy.code === 0,
        deployMs: returned - t0,
        rolloutMs: done?.ms ?? null,
        requestsDuringDeploy: during.length,
        failed: window.filter((s) => s.at <= lastAt && s.status !== 200).length,
        failures: tallyFailures(window.filter((s) => s.at <= lastAt && s.status !== 200)),
        p99MsDuringDeploy: Number(
          quantile(
            during.map((s) => s.ms),
            0.99,
          ).toFixed(1),
        ),
        maxMsDuringDeploy: Number(Math.max(0, ...during.map((s) => s.ms)).toFixed(1)),
        responsesAfter: after.length,
        rpsDuringDeploy: Math.round(during.length / ((returned - t0) / 1000)),
        rpsAfter: Math.round(after.length / (Math.max(1, lastAt - returned) / 1000)),
        staleAfter: after.filter((s) => s.release !== to).length,
        timeline: arrived.map(({ ms, event }) => {
          const keep = ['type', 'host', 'clone', 'state', 'step', 'outcome'].filter((k) => k in event);
          return { ms, ...Object.fromEntries(keep.map((k) => [k, event[k]])) };
        }),
        ...(HOSTS > 0 ? { bytesPerHost: shippedBytes(deploy.stdout) } : {}),
      });
      // Keep the samples array small: only what the next strategy measures.
      load.samples.length = 0;
    }
  } finally {
    await load?.stop();
    await up?.stop();
    await hosts?.stop();
    cleanup();
  }
  const loadAfter = loadavg();

  console.log(
    `\ndeploy benchmark: ${HOSTS > 0 ? `${HOSTS} hosts x 2 clones` : '3 clones'} of examples/shop, ${ENGINE} balancer, ${CONCURRENCY} keep-alive GET /up loops, ` +
      `${AFTER} responses measured after each deploy returns; ${cpus().length} cores, ` +
      `load ${loadBefore[0]!.toFixed(1)} → ${loadAfter[0]!.toFixed(1)}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  console.log(
    '| strategy | deploy s (CLI) | rollout s | requests during | req/s during / after | failed | p99 / max ms during | stale after |',
  );
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    if (r.failed > 0) console.error(`${r.strategy} failures: ${JSON.stringify(r.failures)}`);
    console.log(
      `| ${r.strategy}${r.ok ? '' : ' (FAILED)'} | ${(r.deployMs / 1000).toFixed(1)} | ${r.rolloutMs === null ? '' : (r.rolloutMs / 1000).toFixed(1)} | ${r.requestsDuringDeploy} | ${r.rpsDuringDeploy} / ${r.rpsAfter} | ${r.failed} | ${r.p99MsDuringDeploy} / ${r.maxMsDuringDeploy} | ${r.staleAfter} / ${r.responsesAfter} |`,
    );
  }

  if (HOSTS > 0) {
    console.log(
      `\n| bytes shipped per host | first (clones install + release) | ${rows.map((r) => r.strategy).join(' | ')} |`,
    );
    console.log(`|---|--:|${rows.map(() => '--:|').join('')}`);
    for (const [h, first] of Object.entries(firstBytes)) {
      const cells = rows.map((r) => {
        const b = r.bytesPerHost?.[h] ?? 0;
        return `${b} (${((100 * b) / first).toFixed(2)}%)`;
      });
      console.log(`| ${h} | ${first} | ${cells.join(' | ')} |`);
    }
  }

  await mkdir(join(repo, 'bench', 'results'), { recursive: true });
  await writeFile(
    RESULTS,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: {
          cpu: cpus()[0]?.model,
          cores: cpus().length,
          memoryGb: Math.round(totalmem() / 2 ** 30),
          node: process.version,
          loadBefore,
          loadAfter,
        },
        settings: {
          hosts: HOSTS,
          balancer: ENGINE,
          clones: HOSTS > 0 ? 2 : 3,
          firstBytesPerHost: firstBytes,
          app: 'examples/shop',
          concurrency: CONCURRENCY,
          after: AFTER,
          canarySteps: CANARY_STEPS,
          stepWait: STEP_WAIT,
          drainTimeout: '3s',
        },
        rows,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${RESULTS}`);
  if (rows.some((r) => !r.ok || r.failed > 0 || r.staleAfter > 0)) process.exitCode = 1;
}

await run();
