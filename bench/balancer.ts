// npm run bench:balancer -- the balancer benchmark of issue 3, peers side by side in one run.
//
// Two upstream clones serving a small fixed response (nginx, 1 worker each, when installed; else the tiny
// Node clone of test/balancer/fixtures/clone.mjs), and wrk with BENCH_CONNECTIONS (64) connections against:
//   direct (one clone) · clones balancer (health checks, metrics + admin API, hygiene, X-Forwarded-*, Via,
//   x-clones-* all on) · HAProxy (nbthread 1) · nginx (1 worker) · node-http-proxy (keep-alive agent).
// Each configuration gets a warm-up, then BENCH_RUNS (3) runs of BENCH_SECONDS (5) s, interleaved (run 1 of
// every configuration, then run 2, ..., rotating who goes first); the table shows medians. Next to req/s it
// records each proxy process's CPU time per request (user + system from /proc/<pid>/stat): on a shared
// machine that is the steadier figure. Then the balancer's RSS with BENCH_IDLE (5000) idle keep-alive
// client connections. Prints a table and writes bench/results/balancer.json. Every process it starts
// listens on 127.0.0.1 and is stopped by its pid.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { createBalancer } from '../src/balancer/index.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const IDLE = Number(process.env.BENCH_IDLE ?? 5000);
/** Only these configurations (comma-separated name prefixes), for quick comparisons; default all. */
const ONLY = process.env.BENCH_ONLY?.split(',');
const ROOT = join(import.meta.dirname, '..');
const WRK = '/usr/bin/wrk';
/** USER_HZ: /proc reports CPU time in these ticks (100 on the Linux builds we know of). */
const TICKS_PER_SECOND = 100;

/** The balancer under test, in its own process so that its CPU and RSS are its own. */
async function serveBalancer(urls: string[]): Promise<void> {
  const lb = createBalancer({
    logger: pino({ level: 'warn' }),
    admin: { port: 0, token: 'bench-token-bench-token' },
    targets: urls.map((url, i) => ({ id: `c${i + 1}`, url, release: 'bench' })),
  });
  const { port } = await lb.listen(0, '127.0.0.1');
  process.stdout.write(`ready ${port} ${lb.adminAddress()!.port}\n`);
  // A clean exit, so that `node --cpu-prof` writes its profile.
  process.on('SIGINT', () => process.exit(0));
}

/** The node-http-proxy peer: round-robin over the clones through a keep-alive agent. */
function serveHttpProxy(urls: string[]): void {
  const httpProxy = createRequire(import.meta.url)('http-proxy') as {
    createProxyServer(o: object): {
      web(req: unknown, res: unknown, o: { target: string }): void;
      on(
        event: 'error',
        fn: (err: Error, req: unknown, res: { writeHead(s: number): void; end(): void }) => void,
      ): void;
    };
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
  proxy.on('error', (_err, _req, res) => {
    res.writeHead(502);
    res.end();
  });
  let next = 0;
  const server = createHttpServer((req, res) => {
    proxy.web(req, res, { target: urls[next++ % urls.length]! });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
  });
}

interface Proc {
  child: ChildProcess;
  port: number;
  /** The process whose CPU time is the proxy's (the one that serves). */
  pid: number;
}

/** Starts a process and waits for `ready <port>` on its stdout. */
async function startNode(args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  return { child, port, pid: child.pid! };
}

/** Starts a C server (nginx or HAProxy) in the foreground and waits until its port accepts connections. */
async function startNative(cmd: string, args: string[], port: number): Promise<Proc> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  track(child);
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) throw new Error(`${cmd} did not listen on ${port}`);
    await sleep(50);
  }
  return { child, port, pid: child.pid! };
}

const children = new Set<ChildProcess>();
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}
function stopAll(): void {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
}
process.once('exit', stopAll);
process.once('SIGINT', () => {
  stopAll();
  process.exit(130);
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function found(path: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${path}`]).status === 0;
}

/** nginx with one process (no master, one event loop), its files in a temp prefix. */
function nginxConfig(dir: string, body: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
${body}
}
`;
}

async function startNginxClone(dir: string, id: string): Promise<Proc> {
  const port = await freePort();
  const conf = join(dir, `clone-${id}.conf`);
  const prefix = join(dir, `clone-${id}`);
  await mkdir(prefix, { recursive: true });
  writeFileSync(
    conf,
    nginxConfig(
      prefix,
      `  server {
    listen 127.0.0.1:${port};
    default_type text/plain;
    location = /up { return 200 'ok'; }
    location / { return 200 '${id}'; }
  }`,
    ),
  );
  return startNative('/usr/sbin/nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], port);
}

async function startNginxProxy(dir: string, clonePorts: number[]): Promise<Proc> {
  const port = await freePort();
  const prefix = join(dir, 'nginx-proxy');
  await mkdir(prefix, { recursive: true });
  const conf = join(dir, 'nginx-proxy.conf');
  writeFileSync(
    conf,
    nginxConfig(
      prefix,
      `  upstream clones {
    least_conn;
${clonePorts.map((p) => `    server 127.0.0.1:${p} max_fails=5 fail_timeout=30s;`).join('\n')}
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://clones;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_next_upstream error timeout http_502 http_503 http_504;
    }
  }`,
    ),
  );
  return startNative('/usr/sbin/nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], port);
}

/** HAProxy with one thread, active health checks and X-Forwarded-For, like the balancer's defaults. */
async function startHaproxy(dir: string, clonePorts: number[]): Promise<Proc> {
  const port = await freePort();
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 30s
  timeout http-keep-alive 65s
  option http-keep-alive
  option forwardfor
  http-reuse always
  retries 2
  option redispatch
frontend fe
  bind 127.0.0.1:${port}
  default_backend clones
backend clones
  balance leastconn
  option httpchk GET /up
${clonePorts.map((p, i) => `  server c${i + 1} 127.0.0.1:${p} check inter 5s`).join('\n')}
`,
  );
  return startNative('/usr/sbin/haproxy', ['-f', conf, '-db'], port);
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU time of the serving process per request, in microseconds. */
  cpuUs: number | null;
}

function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return null;
  }
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function wrk(port: number, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      WRK,
      ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    track(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', () => resolve(out));
  });
}

async function measure(port: number, pid: number): Promise<Sample> {
  const before = cpuTicks(pid);
  const out = await wrk(port, SECONDS);
  const after = cpuTicks(pid);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors =
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
    (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  const cpu =
    before !== null && after !== null && requests > 0
      ? Math.round((((after - before) / TICKS_PER_SECOND) * 1e6 * 10) / requests) / 10
      : null;
  return {
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)),
    p50: toMs(/ 50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: toMs(/ 99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    errors,
    requests,
    cpuUs: cpu,
  };
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Config {
  name: string;
  proc?: Proc;
  note?: string;
  samples: Sample[];
}

function version(cmd: string, args: string[]): string | null {
  if (!found(cmd)) return null;
  const r = spawnSync(cmd, args);
  return `${r.stdout}${r.stderr}`.split('\n')[0]!.trim();
}

async function idleRss(port: number, pid: number) {
  const before = rssMb(pid);
  const sockets: Socket[] = [];
  for (let i = 0; i < IDLE; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    s.resume();
    sockets.push(s);
    if (i % 500 === 499) await sleep(50);
  }
  await sleep(2000);
  const result = {
    connections: sockets.filter((s) => !s.destroyed).length,
    rssBeforeMb: before,
    rssAfterMb: rssMb(pid),
  };
  for (const s of sockets) s.destroy();
  return result;
}

async function main(): Promise<void> {
  if (!found(WRK)) throw new Error('wrk is needed: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'clones-bench-balancer-'));
  const useNginx = process.env.BENCH_UPSTREAM !== 'node' && found('/usr/sbin/nginx');
  const loadBefore = loadavg();
  const configs: Config[] = [];
  let idle: Awaited<ReturnType<typeof idleRss>> | undefined;
  try {
    const clones = useNginx
      ? [await startNginxClone(dir, 'c1'), await startNginxClone(dir, 'c2')]
      : [
          await startNode([join(ROOT, 'test', 'balancer', 'fixtures', 'clone.mjs')], {
            CLONES_CLONE_ID: 'c1',
            PORT: '0',
          }),
          await startNode([join(ROOT, 'test', 'balancer', 'fixtures', 'clone.mjs')], {
            CLONES_CLONE_ID: 'c2',
            PORT: '0',
          }),
        ];
    const ports = clones.map((c) => c.port);
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const self = join(ROOT, 'bench', 'balancer.ts');

    configs.push({ name: 'direct (one clone)', proc: clones[0], samples: [] });
    const lbFlags = (process.env.BENCH_LB_FLAGS ?? '').split(' ').filter(Boolean);
    const lb = await startNode([...lbFlags, ...process.execArgv, self, 'serve', ...urls]);
    configs.push({ name: 'clones balancer', proc: lb, samples: [] });
    if (found('/usr/sbin/haproxy')) {
      configs.push({ name: 'haproxy (1 thread)', proc: await startHaproxy(dir, ports), samples: [] });
    } else configs.push({ name: 'haproxy (1 thread)', note: 'not installed', samples: [] });
    if (found('/usr/sbin/nginx')) {
      configs.push({ name: 'nginx (1 worker)', proc: await startNginxProxy(dir, ports), samples: [] });
    } else configs.push({ name: 'nginx (1 worker)', note: 'not installed', samples: [] });
    let httpProxy = true;
    try {
      createRequire(import.meta.url).resolve('http-proxy');
    } catch {
      httpProxy = false;
    }
    if (httpProxy) {
      configs.push({
        name: 'node-http-proxy',
        proc: await startNode([...process.execArgv, self, 'serve-http-proxy', ...urls]),
        samples: [],
      });
    } else configs.push({ name: 'node-http-proxy', note: 'not installed', samples: [] });

    await sleep(1500); // health checks pass
    const live = configs.filter((c) => c.proc && (!ONLY || ONLY.some((o) => c.name.startsWith(o))));
    for (const c of live) await wrk(c.proc!.port, WARMUP);
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < live.length; i++) {
        const c = live[(i + run) % live.length]!;
        const s = await measure(c.proc!.port, c.proc!.pid);
        c.samples.push(s);
        process.stderr.write(
          `run ${run + 1}/${RUNS} ${c.name}: ${s.rps} req/s, p99 ${s.p99} ms, ${s.cpuUs ?? '?'} µs CPU/req\n`,
        );
      }
    }
    idle = await idleRss(lb.port, lb.pid);
  } finally {
    stopAll();
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg();

  const rows = configs.map((c) => {
    if (c.samples.length === 0) {
      return {
        name: c.name,
        rps: null,
        p50: null,
        p99: null,
        cpuUsPerRequest: null,
        errors: null,
        note: c.note,
      };
    }
    const rps = median(c.samples.map((s) => s.rps));
    const mid = c.samples.find((s) => s.rps === rps)!;
    const cpus = c.samples.map((s) => s.cpuUs).filter((v): v is number => v !== null);
    return {
      name: c.name,
      rps,
      p50: mid.p50,
      p99: mid.p99,
      cpuUsPerRequest: cpus.length > 0 ? median(cpus) : null,
      errors: c.samples.reduce((a, s) => a + s.errors, 0),
    };
  });
  const row = (name: string) => rows.find((r) => r.name.startsWith(name));
  const ours = row('clones balancer')!;
  const ratio = (name: string, by: 'rps' | 'cpu') => {
    const peer = row(name);
    if (!peer?.rps || !ours.rps) return null;
    if (by === 'rps') return Math.round((ours.rps / peer.rps) * 100) / 100;
    if (!peer.cpuUsPerRequest || !ours.cpuUsPerRequest) return null;
    // Throughput one core would give, compared: the inverse ratio of CPU per request.
    return Math.round((peer.cpuUsPerRequest / ours.cpuUsPerRequest) * 100) / 100;
  };
  const ratios = {
    vsHaproxy: ratio('haproxy', 'rps'),
    vsHaproxyByCpu: ratio('haproxy', 'cpu'),
    vsNginx: ratio('nginx', 'rps'),
    vsNginxByCpu: ratio('nginx', 'cpu'),
    vsNodeHttpProxy: ratio('node-http-proxy', 'rps'),
    vsNodeHttpProxyByCpu: ratio('node-http-proxy', 'cpu'),
  };

  const fmt = (v: number | null | undefined, digits = 0) =>
    v === null || v === undefined ? '' : v.toFixed(digits);
  console.log(
    `\nbalancer benchmark: wrk -t1 -c${CONNECTIONS}, ${RUNS} × ${SECONDS} s interleaved (medians), ` +
      `${cpus().length} cores, clones: ${useNginx ? 'nginx' : 'node'}; load ${loadBefore[0]!.toFixed(1)} → ${loadAfter[0]!.toFixed(1)}\n`,
  );
  console.log('| configuration | req/s | p50 ms | p99 ms | CPU µs/req | errors | balancer ÷ this (req/s) |');
  console.log('|---|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    const x = r.rps && ours.rps ? (ours.rps / r.rps).toFixed(2) : '';
    console.log(
      `| ${r.name} | ${r.rps ?? r.note} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.cpuUsPerRequest, 1)} | ${r.errors ?? ''} | ${x} |`,
    );
  }
  const check = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'met' : 'NOT met');
  console.log('\n| target (issue 3) | measured | |');
  console.log('|---|--:|---|');
  console.log(
    `| ≥ 0.4 × HAProxy (1 thread) | ${ratios.vsHaproxy ?? ''} (by CPU: ${ratios.vsHaproxyByCpu ?? ''}) | ${check(ratios.vsHaproxy === null ? null : ratios.vsHaproxy >= 0.4)} |`,
  );
  console.log(
    `| ≥ 2.5 × node-http-proxy | ${ratios.vsNodeHttpProxy ?? ''} (by CPU: ${ratios.vsNodeHttpProxyByCpu ?? ''}) | ${check(ratios.vsNodeHttpProxy === null ? null : ratios.vsNodeHttpProxy >= 2.5)} |`,
  );
  console.log(
    `| p99 < 3 ms at ${CONNECTIONS} connections | ${fmt(ours.p99, 2)} ms | ${check(ours.p99 === null ? null : ours.p99 < 3)} |`,
  );
  if (idle) {
    console.log(
      `| RSS with ${idle.connections} idle clients < 200 MB | ${idle.rssAfterMb} MB (idle: ${idle.rssBeforeMb} MB) | ${check(idle.rssAfterMb < 200)} |`,
    );
  }

  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(ROOT, 'bench', 'results', 'balancer.json'),
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
        tools: {
          wrk: version(WRK, ['-v']),
          haproxy: version('/usr/sbin/haproxy', ['-v']),
          nginx: version('/usr/sbin/nginx', ['-v']),
          httpProxy: httpProxyVersion(),
        },
        settings: {
          connections: CONNECTIONS,
          seconds: SECONDS,
          warmup: WARMUP,
          runs: RUNS,
          clones: useNginx ? 'nginx' : 'node',
        },
        rows,
        ratios,
        runs: Object.fromEntries(configs.map((c) => [c.name, c.samples])),
        idle,
      },
      null,
      2,
    )}\n`,
  );
}

function httpProxyVersion(): string | null {
  try {
    return (createRequire(import.meta.url)('http-proxy/package.json') as { version: string }).version;
  } catch {
    return null;
  }
}

const mode = process.argv[2];
if (mode === 'serve') await serveBalancer(process.argv.slice(3));
else if (mode === 'serve-http-proxy') serveHttpProxy(process.argv.slice(3));
else await main();
