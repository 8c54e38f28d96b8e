// npm run bench:session -- the session benchmark of issues 2 and 5. One Express 5 app (bench/session-app.ts),
// one child process per configuration, all driven by one load tool in one run:
//   no session · clones/session on Redis · express-session + connect-redis on the same Redis (the peer) ·
//   clones/session on SQLite · the sealed cookie · Memcached (2 servers) · PostgreSQL · DynamoDB (dynalite) ·
//   Redis Sentinel · Redis Cluster (3 masters). The servers are started by the test harness
//   (bench/session-stores.ts) and stopped by pid at the end.
// Per configuration and route (GET /read, POST /write, POST /update): a warm-up, then RUNS timed runs; the
// table shows the median requests/s and the p99 of the median run. Runs are interleaved (run 1 of every
// configuration, then run 2, ...) so that drift in the machine's load hits every configuration alike.
// Then the lost-update run: 32 clients x 100 increments on one session, and the final value read back.
// Options (each also an environment variable): --only a,b (BENCH_ONLY: configurations, e.g. redis,memcached;
// default all) --runs (BENCH_RUNS, 3) --seconds (BENCH_SECONDS, 5) --warmup (BENCH_WARMUP, 1) --connections
// (BENCH_CONNECTIONS, 16) --out <file>. Only a run of every configuration writes bench/results/session.json;
// a subset writes to --out, else to a file in the temporary directory.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadTool } from './load.ts';
import {
  type ConfigSummary,
  type LostUpdates,
  printTable,
  ROUTES,
  type RouteName,
  type Run,
  ratios,
  summarize,
} from './session-report.ts';
import { type Config, configKeys, selectConfigs, startConfigs } from './session-stores.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: process.env.BENCH_ONLY },
    runs: { type: 'string', default: process.env.BENCH_RUNS ?? '3' },
    seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? '5' },
    warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '1' },
    connections: { type: 'string', default: process.env.BENCH_CONNECTIONS ?? '16' },
    out: { type: 'string' },
  },
});
const positive = (name: string, value: string | undefined, min = 1) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
};
const SECONDS = positive('seconds', args.seconds);
const WARMUP = positive('warmup', args.warmup, 0);
const RUNS = positive('runs', args.runs);
const CONNECTIONS = positive('connections', args.connections);
const SELECTED = selectConfigs(
  args.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const LOST_CLIENTS = 32;
const LOST_EACH = 100;
/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux builds we know of). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

const ROOT = join(import.meta.dirname, '..');
const APP = join(ROOT, 'bench', 'session-app.ts');
const FULL = SELECTED.length === configKeys().length;
const RESULTS = args.out
  ? resolve(args.out)
  : FULL
    ? join(ROOT, 'bench', 'results', 'session.json')
    : join(tmpdir(), 'clones-bench-session-subset.json');

interface Running extends Config {
  child: ChildProcess;
  url: string;
  cookie: string | undefined;
  runs: Record<RouteName, Run[]>;
}

/** CPU time a process has used so far, in ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

async function startApp(config: Config): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP], {
    cwd: ROOT,
    env: { ...process.env, ...config.env, PORT: '0', NODE_ENV: 'production', CLONES_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${config.label}: the app exited (code ${code}) before listening`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const port = /^listening (\d+)$/.exec(line)?.[1];
      if (port) return `http://127.0.0.1:${port}`;
    }
    throw new Error(`${config.label}: no port printed`);
  })();
  exited.catch(() => {});
  const url = await Promise.race([
    listening,
    exited,
    sleep(30_000, undefined, { ref: false }).then(() =>
      Promise.reject(new Error(`${config.label}: the app did not listen within 30 s`)),
    ),
  ]).catch((err) => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    throw err;
  });
  return { ...config, child, url, cookie: undefined, runs: { read: [], write: [], update: [] } };
}

async function stopApp(app: Running): Promise<void> {
  if (app.child.exitCode !== null || app.child.pid === undefined) return;
  const exited = once(app.child, 'exit');
  process.kill(app.child.pid, 'SIGTERM');
  const late = await Promise.race([
    exited.then(() => false),
    sleep(5000, undefined, { ref: false }).then(() => true),
  ]);
  if (late && app.child.exitCode === null) {
    process.kill(app.child.pid, 'SIGKILL');
    await exited;
  }
}

/** Starts a session (user + counter) and returns its cookie, as `name=value`. */
async function prime(app: Running): Promise<string | undefined> {
  const res = await fetch(`${app.url}/prime`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`${app.label}: /prime answered ${res.status}`);
  await res.arrayBuffer();
  const set = res.headers.getSetCookie()[0];
  if (!set && !app.noSession) throw new Error(`${app.label}: /prime set no cookie`);
  return set?.split(';')[0];
}

/** 32 clients x 100 increments on one session, concurrently; answers how many increments were lost. */
async function lostUpdates(app: Running): Promise<LostUpdates> {
  let jar = await prime(app);
  let failed = 0;
  await Promise.all(
    Array.from({ length: LOST_CLIENTS }, async () => {
      for (let i = 0; i < LOST_EACH; i++) {
        const res = await fetch(`${app.url}/update`, { method: 'POST', headers: jar ? { cookie: jar } : {} });
        await res.arrayBuffer();
        if (res.status !== 200) failed += 1;
        // One browser, one cookie jar: a new cookie (the sealed session) replaces the old one, as in a browser.
        const set = res.headers.getSetCookie()[0];
        if (set) jar = set.split(';')[0];
      }
    }),
  );
  const res = await fetch(`${app.url}/count`, { headers: jar ? { cookie: jar } : {} });
  const final = Number(((await res.json()) as { n: number | null }).n ?? 0);
  return { final, lost: LOST_CLIENTS * LOST_EACH - final, failed };
}

function versionOf(pkg: string): Promise<string> {
  return readFile(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8').then(
    (json) => (JSON.parse(json) as { version: string }).version,
    () => '?',
  );
}

async function main(): Promise<void> {
  const tool = loadTool();
  const started = new Date();
  const loadBefore = loadavg();
  console.error(`session bench: ${SELECTED.join(', ')}`);
  const stores = await startConfigs(SELECTED);
  const apps: Running[] = [];
  try {
    for (const config of stores.configs) apps.push(await startApp(config));
    for (const app of apps) app.cookie = await prime(app);
    const total = ROUTES.length * apps.length * (WARMUP + RUNS * SECONDS);
    const labelWidth = Math.max(...apps.map((a) => a.label.length));
    console.error(
      `session bench: ${tool.name} ${tool.version}, ${CONNECTIONS} connections, ${RUNS} x ${SECONDS} s after ` +
        `${WARMUP} s warm-up, about ${Math.round(total / 60)} min of load`,
    );
    for (const route of ROUTES) {
      for (const app of apps) {
        if (WARMUP === 0) break;
        const url = `${app.url}${route.path}`;
        await tool.run({
          url,
          method: route.method,
          cookie: app.cookie,
          connections: CONNECTIONS,
          seconds: WARMUP,
        });
      }
      for (let run = 0; run < RUNS; run++) {
        // Rotate who goes first, so no configuration always runs right after the same neighbour.
        for (let i = 0; i < apps.length; i++) {
          const app = apps[(i + run) % apps.length]!;
          const cpuBefore = cpuMs(app.child.pid);
          const load = await tool.run({
            url: `${app.url}${route.path}`,
            method: route.method,
            cookie: app.cookie,
            connections: CONNECTIONS,
            seconds: SECONDS,
          });
          const cpu = cpuMs(app.child.pid) - cpuBefore;
          const r: Run = { ...load, appCpuUsPerRequest: (cpu * 1000) / (load.requestsPerSecond * SECONDS) };
          if (r.failures > 0)
            console.error(`warning: ${app.label} ${route.name}: ${r.failures} failed requests`);
          app.runs[route.name].push(r);
          console.error(
            `  ${route.name.padEnd(6)} run ${run + 1} ${app.label.padEnd(labelWidth)} ` +
              `${r.requestsPerSecond.toFixed(0).padStart(6)} req/s  p99 ${r.p99Ms.toFixed(1)} ms  ` +
              `app cpu ${r.appCpuUsPerRequest.toFixed(0)} us/req`,
          );
        }
      }
    }
    const summary: Record<string, ConfigSummary> = {};
    for (const app of apps) {
      const lost = app.noSession ? null : await lostUpdates(app);
      if (lost)
        console.error(`  lost updates ${app.label.padEnd(labelWidth)} ${lost.lost} (${lost.failed} failed)`);
      summary[app.key] = summarize(app.label, app.clientSide ?? false, app.runs, lost);
    }
    const ratioValues = ratios(summary);
    printTable(summary, ratioValues, LOST_CLIENTS * LOST_EACH);

    const machine = {
      cpu: cpus()[0]?.model ?? '?',
      cores: cpus().length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      os: `${process.platform} ${release()}`,
      node: process.version,
      ...stores.servers,
      loadAverageBefore: loadBefore.map((x) => Math.round(x * 100) / 100),
      loadAverageAfter: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    const packages = [
      'express',
      'express-session',
      'connect-redis',
      'redis',
      'ioredis',
      'better-sqlite3',
      'jose',
    ];
    packages.push('pg', '@aws-sdk/client-dynamodb', 'dynalite');
    const versions = Object.fromEntries(
      await Promise.all(packages.map(async (p) => [p, await versionOf(p)] as const)),
    );
    await mkdir(dirname(RESULTS), { recursive: true });
    const result = {
      date: started.toISOString(),
      machine,
      versions,
      tool: {
        name: tool.name,
        version: tool.version,
        connections: CONNECTIONS,
        seconds: SECONDS,
        warmup: WARMUP,
        runs: RUNS,
      },
      notes: [
        'clones/session runs with eager: true, so route code reads req.session.x as with express-session.',
        'express-session: resave false, saveUninitialized false; /update is req.session.n = (req.session.n || 0) + 1.',
        'requestsPerSecond is the median of the runs; p99Ms is the p99 latency of the median run.',
        'appCpuUsPerRequest: CPU time (user + system, all threads) of the app process per answered request, median of the runs; the *ByAppCpu ratios use it.',
        `lost-update run: ${LOST_CLIENTS} clients x ${LOST_EACH} POST /update on one session, then GET /count.`,
        'sealed cookie: the session is in the cookie; concurrent requests of one browser cannot merge (one jar, last response wins), so its lost-update figure measures that, not a store.',
        'servers (test harness, loopback, on the same 2 cores): memcached x2 (one URL, consistent hashing); PostgreSQL 15 primary (fsync off); dynalite in memory; Redis Sentinel = master + replica + 3 sentinels; Redis Cluster = 3 masters, no replicas.',
      ],
      configurations: summary,
      ratios: ratioValues,
    };
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${RESULTS}${FULL ? '' : ' (a subset: bench/results/session.json left as it was)'}`);
  } finally {
    await Promise.all(apps.map(stopApp));
    await stores.stop();
  }
}

await main();
