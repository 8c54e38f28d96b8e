// npm run bench:session -- the session benchmark of issue 2. One Express 5 app (bench/session-app.ts), one child
// process per configuration, all driven by one load tool in one run:
//   no session · clones/session on Redis · express-session + connect-redis on the same Redis (the peer) ·
//   clones/session on SQLite · clones/session with the sealed cookie.
// Per configuration and route (GET /read, POST /write, POST /update): a warm-up, then RUNS timed runs; the
// table shows the median requests/s and the p99 of the median run. Runs are interleaved (run 1 of every
// configuration, then run 2, ...) so that drift in the machine's load hits every configuration alike.
// Then the lost-update run: 32 clients x 100 increments on one session, and the final value read back.
// Environment: BENCH_SECONDS (5), BENCH_WARMUP (1), BENCH_RUNS (3), BENCH_CONNECTIONS (16).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis } from '../test/harness/redis-server.ts';
import { type LoadResult, loadTool } from './load.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const LOST_CLIENTS = 32;
const LOST_EACH = 100;
/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux builds we know of). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

const ROOT = join(import.meta.dirname, '..');
const APP = join(ROOT, 'bench', 'session-app.ts');
const RESULTS = join(ROOT, 'bench', 'results', 'session.json');

const ROUTES = [
  { name: 'read', method: 'GET', path: '/read' },
  { name: 'write', method: 'POST', path: '/write' },
  { name: 'update', method: 'POST', path: '/update' },
] as const;
type RouteName = (typeof ROUTES)[number]['name'];

interface Config {
  key: string;
  label: string;
  env: Record<string, string>;
  /** The session travels in the cookie: concurrent requests cannot merge (the last response's cookie wins). */
  clientSide?: boolean;
  /** No session at all: nothing to lose. */
  noSession?: boolean;
}

interface Running extends Config {
  child: ChildProcess;
  url: string;
  cookie: string | undefined;
  runs: Record<RouteName, Run[]>;
}

/** A load run plus the app process's CPU time (user + system, all threads) per request it answered. */
interface Run extends LoadResult {
  appCpuUsPerRequest: number;
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

interface ConfigSummary {
  label: string;
  clientSide: boolean;
  routes: Record<
    RouteName,
    { requestsPerSecond: number; p99Ms: number; appCpuUsPerRequest: number; runs: Run[] }
  >;
  lostUpdates: LostUpdates | null;
}

interface LostUpdates {
  final: number;
  lost: number;
  failed: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

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
  const url = await Promise.race([
    listening,
    exited,
    sleep(30_000).then(() => Promise.reject(new Error('timeout'))),
  ]);
  exited.catch(() => {});
  return { ...config, child, url, cookie: undefined, runs: { read: [], write: [], update: [] } };
}

async function stopApp(app: Running): Promise<void> {
  if (app.child.exitCode !== null || app.child.pid === undefined) return;
  const exited = once(app.child, 'exit');
  process.kill(app.child.pid, 'SIGTERM');
  const late = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
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
  const redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'clones-bench-'));
  const configs: Config[] = [
    { key: 'none', label: 'no session', env: { BENCH_CONFIG: 'none' }, noSession: true },
    {
      key: 'clones-redis',
      label: 'clones/session redis',
      env: { BENCH_CONFIG: 'clones', SESSION_STORE: redis.url },
    },
    {
      key: 'express-session-redis',
      label: 'express-session+connect-redis',
      env: { BENCH_CONFIG: 'express-session', BENCH_REDIS_URL: redis.url },
    },
    {
      key: 'clones-sqlite',
      label: 'clones/session sqlite',
      env: { BENCH_CONFIG: 'clones', SESSION_STORE: `sqlite:${join(dir, 'sessions.db')}` },
    },
    {
      key: 'clones-cookie',
      label: 'clones/session sealed cookie',
      env: { BENCH_CONFIG: 'clones', SESSION_STORE: 'cookie:' },
      clientSide: true,
    },
  ];
  const apps: Running[] = [];
  try {
    for (const config of configs) apps.push(await startApp(config));
    for (const app of apps) app.cookie = await prime(app);
    const total = ROUTES.length * apps.length * (WARMUP + RUNS * SECONDS);
    console.error(
      `session bench: ${tool.name} ${tool.version}, ${CONNECTIONS} connections, ${RUNS} x ${SECONDS} s after ` +
        `${WARMUP} s warm-up, about ${Math.round(total / 60)} min of load`,
    );
    for (const route of ROUTES) {
      for (const app of apps) {
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
            `  ${route.name.padEnd(6)} run ${run + 1} ${app.label.padEnd(30)} ` +
              `${r.requestsPerSecond.toFixed(0).padStart(6)} req/s  p99 ${r.p99Ms.toFixed(1)} ms  ` +
              `app cpu ${r.appCpuUsPerRequest.toFixed(0)} us/req`,
          );
        }
      }
    }
    const lost: Record<string, LostUpdates | null> = {};
    for (const app of apps) lost[app.key] = app.noSession ? null : await lostUpdates(app);

    const summary: Record<string, ConfigSummary> = {};
    for (const app of apps) {
      const routes = {} as ConfigSummary['routes'];
      for (const { name } of ROUTES) {
        const runs = app.runs[name];
        const middle = [...runs].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[
          (runs.length - 1) >> 1
        ];
        routes[name] = {
          requestsPerSecond: Math.round(median(runs.map((r) => r.requestsPerSecond))),
          p99Ms: middle?.p99Ms ?? Number.NaN,
          appCpuUsPerRequest: Math.round(median(runs.map((r) => r.appCpuUsPerRequest)) * 10) / 10,
          runs: runs.map((r) => ({
            ...r,
            requestsPerSecond: Math.round(r.requestsPerSecond),
            appCpuUsPerRequest: Math.round(r.appCpuUsPerRequest * 10) / 10,
          })),
        };
      }
      summary[app.key] = {
        label: app.label,
        clientSide: app.clientSide ?? false,
        routes,
        lostUpdates: lost[app.key] ?? null,
      };
    }

    const rps = (key: string, route: RouteName) => summary[key]!.routes[route].requestsPerSecond;
    const cpu = (key: string, route: RouteName) => summary[key]!.routes[route].appCpuUsPerRequest;
    const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    const ratios = {
      readRedisVsExpressSession: {
        value: ratio(rps('clones-redis', 'read'), rps('express-session-redis', 'read')),
        target: 1.25,
      },
      writeRedisVsExpressSession: {
        value: ratio(rps('clones-redis', 'write'), rps('express-session-redis', 'write')),
        target: 1.0,
      },
      readRedisVsNoSession: { value: ratio(rps('clones-redis', 'read'), rps('none', 'read')), target: 0.85 },
      readExpressSessionVsNoSession: {
        value: ratio(rps('express-session-redis', 'read'), rps('none', 'read')),
        target: null,
      },
      // The same ratios from the app's CPU time per request (inverted: less CPU is faster). On a shared machine
      // they move much less than requests/s, because other processes take wall time, not this app's CPU time.
      readRedisVsExpressSessionByAppCpu: {
        value: ratio(cpu('express-session-redis', 'read'), cpu('clones-redis', 'read')),
        target: 1.25,
      },
      writeRedisVsExpressSessionByAppCpu: {
        value: ratio(cpu('express-session-redis', 'write'), cpu('clones-redis', 'write')),
        target: 1.0,
      },
      readRedisVsNoSessionByAppCpu: {
        value: ratio(cpu('none', 'read'), cpu('clones-redis', 'read')),
        target: 0.85,
      },
    };

    printTable(apps, summary, lost, ratios);
    const machine = {
      cpu: cpus()[0]?.model ?? '?',
      cores: cpus().length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      os: `${process.platform} ${release()}`,
      node: process.version,
      redis:
        /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ??
        '?',
      loadAverageBefore: loadBefore.map((x) => Math.round(x * 100) / 100),
      loadAverageAfter: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    const versions = Object.fromEntries(
      await Promise.all(
        ['express', 'express-session', 'connect-redis', 'redis', 'ioredis', 'better-sqlite3', 'jose'].map(
          async (p) => [p, await versionOf(p)] as const,
        ),
      ),
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
      ],
      configurations: summary,
      ratios,
    };
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${RESULTS}`);
  } finally {
    await Promise.all(apps.map(stopApp));
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function printTable(
  apps: Running[],
  summary: Record<string, ConfigSummary>,
  lost: Record<string, LostUpdates | null>,
  ratios: Record<string, { value: number; target: number | null }>,
): void {
  const header = [
    'configuration',
    'read req/s',
    'p99 ms',
    'write req/s',
    'p99 ms',
    'update req/s',
    'p99 ms',
    'lost updates',
  ];
  const rows = apps.map((app) => {
    const r = summary[app.key]!.routes;
    const l = lost[app.key];
    const lostCell = !l ? 'n/a' : `${l.lost}/${LOST_CLIENTS * LOST_EACH}${app.clientSide ? '*' : ''}`;
    return [
      app.label,
      String(r.read.requestsPerSecond),
      r.read.p99Ms.toFixed(1),
      String(r.write.requestsPerSecond),
      r.write.p99Ms.toFixed(1),
      String(r.update.requestsPerSecond),
      r.update.p99Ms.toFixed(1),
      lostCell,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(`\n${line(header)}`);
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of rows) console.log(line(row));
  console.log('\napp CPU per request (us, user + system, median of the runs):');
  for (const app of apps) {
    const r = summary[app.key]!.routes;
    console.log(
      `  ${app.label.padEnd(widths[0]!)}  read ${r.read.appCpuUsPerRequest.toFixed(0).padStart(4)}` +
        `  write ${r.write.appCpuUsPerRequest.toFixed(0).padStart(4)}` +
        `  update ${r.update.appCpuUsPerRequest.toFixed(0).padStart(4)}`,
    );
  }
  console.log(
    '\n* sealed cookie: one browser jar, the last response wins; no store can merge client-side sessions.',
  );
  console.log('');
  for (const [name, { value, target }] of Object.entries(ratios)) {
    const verdict =
      target === null
        ? ''
        : value >= target
          ? `  (target >= ${target}: met)`
          : `  (target >= ${target}: NOT met)`;
    console.log(`${name.padEnd(36)} ${value.toFixed(3)}${verdict}`);
  }
}

await main();
