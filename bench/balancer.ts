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
//
// Issue 10 adds, in the same run: HTTPS rows (the balancer, HAProxy and nginx terminating TLS with the same
// P-256 certificate chain, Mozilla intermediate ciphers): HTTP/1.1 through `wrk https://` and HTTP/2 through
// h2load (nghttp2-client, BENCH_H2_STREAMS (10) streams per connection); and a starvation row: the p99 of
// normal GETs while BENCH_SLOW_UPLOADS (1000) POSTs with Content-Length 1000000 send one byte a second, through
// the balancer and straight at a Node clone that reads its uploads.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { createBalancer } from '../src/balancer/index.ts';
import { makeTestPki } from '../test/harness/tls-certs.ts';
import { cpuTicks, median, TICKS_PER_SECOND } from './proc-stats.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const IDLE = Number(process.env.BENCH_IDLE ?? 5000);
const H2_STREAMS = Number(process.env.BENCH_H2_STREAMS ?? 10);
const SLOW_UPLOADS = Number(process.env.BENCH_SLOW_UPLOADS ?? 1000);
const STARVE_RATE = Number(process.env.BENCH_STARVE_RATE ?? 200);
const H2LOAD = '/usr/bin/h2load';
/** Only these configurations (comma-separated name prefixes), for quick comparisons; default all. */
const ONLY = process.env.BENCH_ONLY?.split(',');
const ROOT = join(import.meta.dirname, '..');
const WRK = '/usr/bin/wrk';

/** The balancer under test, in its own process so that its CPU and RSS are its own; HTTPS with BENCH_TLS_*. */
async function serveBalancer(urls: string[]): Promise<void> {
  const cert = process.env.BENCH_TLS_CERT;
  const key = process.env.BENCH_TLS_KEY;
  const lb = createBalancer({
    logger: pino({ level: 'warn' }),
    // BENCH_ENGINE=haproxy: the "clones on HAProxy" rows (the haproxy engine, its worker is what serves).
    engine: process.env.BENCH_ENGINE === 'haproxy' ? 'haproxy' : 'builtin',
    admin: { port: 0, token: 'bench-token-bench-token' },
    targets: urls.map((url, i) => ({ id: `c${i + 1}`, url, release: 'bench' })),
    ...(cert && key ? { tls: { cert, key, watch: false } } : {}),
  });
  const { port } = await lb.listen(0, '127.0.0.1');
  process.stdout.write(`ready ${port} ${lb.adminAddress()!.port}\n`);
  // A clean exit, so that `node --cpu-prof` writes its profile.
  // SIGTERM (how the bench stops its children) too: exiting runs the haproxy engine's exit hook, so its
  // haproxy does not outlive the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
}

/** The clone of the starvation row: GETs answered at once, uploads read to their end first, as apps do. */
function serveUploadClone(): void {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
  });
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

/** nginx as the proxy peer; with `tls` (leaf and key files) it terminates HTTPS and h2 with the same chain. */
async function startNginxProxy(
  dir: string,
  clonePorts: number[],
  tls?: { cert: string; key: string },
): Promise<Proc> {
  const port = await freePort();
  const name = tls ? 'nginx-tls' : 'nginx-proxy';
  const prefix = join(dir, name);
  await mkdir(prefix, { recursive: true });
  const conf = join(dir, `${name}.conf`);
  const listen = tls
    ? `listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${INTERMEDIATE};
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:SSL:10m;
    http2_max_concurrent_streams 100;`
    : `listen 127.0.0.1:${port};`;
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
    ${listen}
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

/**
 * Raw HAProxy with a hand-written config equivalent to what the haproxy engine generates for the bench's
 * options: the same checks (GET /up, 5 s, rise 2 fall 3, observe layer7), retries and redispatch, hygiene
 * rules, X-Forwarded-*, Via and the x-clones-* headers (release from a map), one thread.
 */
async function startHaproxyEquivalent(dir: string, clonePorts: number[]): Promise<Proc> {
  const port = await freePort();
  const conf = join(dir, 'haproxy-equivalent.cfg');
  const map = join(dir, 'release-equivalent.map');
  writeFileSync(map, `${clonePorts.map((_, i) => `c${i + 1} bench`).join('\n')}\n`);
  writeFileSync(
    conf,
    `global
  nbthread 1
  tune.http.maxhdr 100
defaults
  mode http
  option idle-close-on-response
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 65s
  timeout queue 10s
  timeout check 2s
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
frontend fe
  bind 127.0.0.1:${port}
  acl trusted src 127.0.0.0/8 ::1
  http-request deny deny_status 400 unless { url_beg / } or { url_beg -i http:// https:// }
  http-request deny deny_status 400 unless { req.fhdr(host) -m reg '^([A-Za-z0-9._~-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$' } or { req.ver 1.0 } !{ req.hdr_cnt(host) gt 0 }
  http-request deny deny_status 400 if { req.hdr_names -m sub _ }
  http-request disable-l7-retry unless METH_GET or METH_HEAD or METH_OPTIONS or METH_PUT or METH_DELETE
  http-request del-header x-forwarded- -m beg unless trusted
  option forwardfor
  http-request set-header x-forwarded-proto http unless trusted { req.hdr(x-forwarded-proto) -m found }
  http-request add-header via "%[req.ver] clones"
  http-response add-header via "%[res.ver] clones"
  http-response set-header x-clones-clone %[srv_name]
  http-response set-header x-clones-release %[srv_name,map(${map},unknown)]
  default_backend clones
backend clones
  balance leastconn
  http-reuse safe
  option httpchk
  http-check send meth GET uri /up ver HTTP/1.1 hdr host localhost
  http-check expect rstatus ^(2..|3..)$
${clonePorts.map((p, i) => `  server c${i + 1} 127.0.0.1:${p} maxconn 512 check inter 5s fastinter 1s rise 2 fall 3 observe layer7 error-limit 5 on-error mark-down`).join('\n')}
`,
  );
  return startNative('/usr/sbin/haproxy', ['-f', conf, '-db'], port);
}

/** The worker of the haproxy a `serve` process runs (engine haproxy): node → haproxy master → worker. */
function haproxyWorkerOf(nodePid: number): number | undefined {
  const children = (pid: number) =>
    spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
  const master = children(nodePid)[0];
  return master === undefined ? undefined : children(master).at(-1);
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

const INTERMEDIATE =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

/** HAProxy terminating TLS (h2 and http/1.1 by ALPN), same backend settings as the plain row. */
async function startHaproxyTls(dir: string, clonePorts: number[], pem: string): Promise<Proc> {
  const port = await freePort();
  const conf = join(dir, 'haproxy-tls.cfg');
  writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 8000
  ssl-default-bind-ciphers ${INTERMEDIATE}
  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
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
  bind 127.0.0.1:${port} ssl crt ${pem} alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https
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

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function wrk(port: number, seconds: number, scheme = 'http', connections = CONNECTIONS): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      WRK,
      ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `${scheme}://127.0.0.1:${port}/`],
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

/** How a configuration is measured: HTTP/1.1 with wrk (plain or https), or HTTP/2 with h2load. */
type Kind = 'http' | 'https' | 'h2';

function h2load(port: number, seconds: number, log?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const connections = Math.max(1, Math.round(CONNECTIONS / H2_STREAMS));
    const child = spawn(
      H2LOAD,
      [
        '-t1',
        `-c${connections}`,
        `-m${H2_STREAMS}`,
        '-D',
        String(seconds),
        ...(log ? [`--log-file=${log}`] : []),
        `https://127.0.0.1:${port}/`,
      ],
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

async function measureH2(port: number, pid: number, dir: string): Promise<Sample> {
  const log = join(dir, `h2load-${port}.log`);
  const before = cpuTicks(pid);
  const out = await h2load(port, SECONDS, log);
  const after = cpuTicks(pid);
  const m =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  const requests = Number(m?.[3] ?? 0);
  const durations = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => Number(line.split('\t')[2]) / 1000)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const pct = (p: number) =>
    durations.length
      ? durations[Math.min(durations.length - 1, Math.floor(durations.length * p))]!
      : Number.NaN;
  return {
    rps: Math.round(Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0)),
    p50: Math.round(pct(0.5) * 100) / 100,
    p99: Math.round(pct(0.99) * 100) / 100,
    errors: m ? Number(m[4]) + Number(m[5]) + Number(m[6]) : 0,
    requests,
    cpuUs:
      before !== null && after !== null && requests > 0
        ? Math.round((((after - before) / TICKS_PER_SECOND) * 1e6 * 10) / requests) / 10
        : null,
  };
}

async function measure(port: number, pid: number, kind: Kind = 'http'): Promise<Sample> {
  const before = cpuTicks(pid);
  const out = await wrk(port, SECONDS, kind === 'https' ? 'https' : 'http');
  const after = cpuTicks(pid);
  const sample = parseWrk(out);
  sample.cpuUs =
    before !== null && after !== null && sample.requests > 0
      ? Math.round((((after - before) / TICKS_PER_SECOND) * 1e6 * 10) / sample.requests) / 10
      : null;
  return sample;
}

function parseWrk(out: string): Sample {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors =
    Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
    (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)),
    p50: toMs(/ 50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: toMs(/ 99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    errors,
    requests,
    cpuUs: null,
  };
}

interface Starved extends Sample {
  /** Slow uploads still open when the GETs were done. */
  uploadsOpen: number;
}

/**
 * The starvation row: SLOW_UPLOADS POSTs announce Content-Length 1000000 and send one byte a second; after
 * 3 s, normal GETs arrive at a steady STARVE_RATE per second for 10 s over 8 keep-alive connections, each
 * timed from the client (a GET with no answer within 2 s counts as failed); then every upload socket is
 * closed. A steady rate, not wrk's closed loop: "normal GETs" are what a site gets, and at saturation the
 * p99 would measure the machine, not starvation.
 */
async function starve(port: number): Promise<Starved> {
  const sockets: Socket[] = [];
  for (let i = 0; i < SLOW_UPLOADS; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    socket.resume();
    sockets.push(socket);
    if (i % 100 === 99) await sleep(20);
  }
  const drip = setInterval(() => {
    for (const socket of sockets) if (!socket.destroyed) socket.write('a');
  }, 1000);
  try {
    await sleep(3000);
    const sample = await pacedGets(port, STARVE_RATE, 10);
    return { ...sample, uploadsOpen: sockets.filter((s) => !s.destroyed).length };
  } finally {
    clearInterval(drip);
    for (const socket of sockets) socket.destroy();
  }
}

/** GETs at `rate` per second for `seconds`, each timed; bounded: every GET gives up after 2 s. */
async function pacedGets(port: number, rate: number, seconds: number): Promise<Sample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const latencies: number[] = [];
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const req = httpRequest({ port, host: '127.0.0.1', path: '/', agent, timeout: 2000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - started);
          else errors++;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(one());
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return {
    rps: Math.round(latencies.length / seconds),
    p50: at(0.5),
    p99: at(0.99),
    errors,
    requests: latencies.length + errors,
    cpuUs: null,
  };
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

interface Config {
  name: string;
  kind?: Kind;
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
  let starvation: { direct: Starved; balancer: Starved } | undefined;
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
    if (found('/usr/sbin/haproxy')) {
      // Issue 13: clones driving HAProxy, against raw HAProxy with the equivalent hand-written config.
      const onHaproxy = await startNode([...process.execArgv, self, 'serve', ...urls], {
        BENCH_ENGINE: 'haproxy',
      });
      const worker = haproxyWorkerOf(onHaproxy.pid);
      configs.push({
        name: 'clones on HAProxy',
        proc: worker === undefined ? undefined : { ...onHaproxy, pid: worker },
        note: worker === undefined ? 'haproxy worker not found' : undefined,
        samples: [],
      });
      configs.push({
        name: 'raw HAProxy, equivalent config',
        proc: await startHaproxyEquivalent(dir, ports),
        samples: [],
      });
    }
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

    // HTTPS rows: one certificate chain (made here with openssl) for every peer.
    const pki = makeTestPki(join(dir, 'pki'));
    const leaf = pki.leaf('bench', ['localhost']);
    const pem = join(dir, 'haproxy.pem');
    writeFileSync(pem, readFileSync(leaf.fullchainFile, 'utf8') + readFileSync(leaf.keyFile, 'utf8'));
    const lbTls = await startNode([...lbFlags, ...process.execArgv, self, 'serve', ...urls], {
      BENCH_TLS_CERT: leaf.fullchainFile,
      BENCH_TLS_KEY: leaf.keyFile,
    });
    const haTls = found('/usr/sbin/haproxy') ? await startHaproxyTls(dir, ports, pem) : undefined;
    // Issue 13 over TLS: clones driving HAProxy with the same chain, beside the raw TLS config above.
    const onHaTls = found('/usr/sbin/haproxy')
      ? await startNode([...process.execArgv, self, 'serve', ...urls], {
          BENCH_ENGINE: 'haproxy',
          BENCH_TLS_CERT: leaf.fullchainFile,
          BENCH_TLS_KEY: leaf.keyFile,
        })
      : undefined;
    const onHaTlsWorker = onHaTls ? haproxyWorkerOf(onHaTls.pid) : undefined;
    const ngTls = found('/usr/sbin/nginx')
      ? await startNginxProxy(dir, ports, { cert: leaf.fullchainFile, key: leaf.keyFile })
      : undefined;
    const h2 = found(H2LOAD);
    for (const [kind, label] of [
      ['https', 'https h1.1'],
      ['h2', 'https h2'],
    ] as const) {
      const missing =
        kind === 'h2' && !h2 ? 'h2load not installed (apt-get install nghttp2-client)' : undefined;
      for (const [name, proc] of [
        ['clones balancer', lbTls],
        ['haproxy (1 thread)', haTls],
        ['clones on HAProxy', onHaTls && onHaTlsWorker ? { ...onHaTls, pid: onHaTlsWorker } : undefined],
        ['nginx (1 worker)', ngTls],
      ] as const) {
        configs.push({
          name: `${name} ${label}`,
          kind,
          proc: missing ? undefined : proc,
          note: missing ?? (proc ? undefined : 'not installed'),
          samples: [],
        });
      }
    }

    await sleep(1500); // health checks pass
    const live = configs.filter((c) => c.proc && (!ONLY || ONLY.some((o) => c.name.startsWith(o))));
    for (const c of live) {
      if (c.kind === 'h2') await h2load(c.proc!.port, WARMUP);
      else await wrk(c.proc!.port, WARMUP, c.kind === 'https' ? 'https' : 'http');
    }
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < live.length; i++) {
        const c = live[(i + run) % live.length]!;
        const s =
          c.kind === 'h2'
            ? await measureH2(c.proc!.port, c.proc!.pid, dir)
            : await measure(c.proc!.port, c.proc!.pid, c.kind);
        c.samples.push(s);
        process.stderr.write(
          `run ${run + 1}/${RUNS} ${c.name}: ${s.rps} req/s, p99 ${s.p99} ms, ${s.cpuUs ?? '?'} µs CPU/req\n`,
        );
      }
    }
    idle = await idleRss(lb.port, lb.pid);
    if (!ONLY || ONLY.includes('starvation')) {
      const uploadClone = await startNode([...process.execArgv, self, 'serve-upload-clone']);
      const guarded = await startNode([
        ...lbFlags,
        ...process.execArgv,
        self,
        'serve',
        `http://127.0.0.1:${uploadClone.port}`,
      ]);
      await sleep(1500);
      starvation = {
        direct: await starve(uploadClone.port),
        balancer: await starve(guarded.port),
      };
    }
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
        kind: c.kind ?? 'http',
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
      kind: c.kind ?? 'http',
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
  const ratios: Record<string, number | null> = {
    vsHaproxy: ratio('haproxy', 'rps'),
    vsHaproxyByCpu: ratio('haproxy', 'cpu'),
    vsNginx: ratio('nginx', 'rps'),
    vsNginxByCpu: ratio('nginx', 'cpu'),
    vsNodeHttpProxy: ratio('node-http-proxy', 'rps'),
    vsNodeHttpProxyByCpu: ratio('node-http-proxy', 'cpu'),
    ...tlsRatios('https h1.1', 'Https'),
    ...tlsRatios('https h2', 'H2'),
  };
  function tlsRatios(label: string, key: string): Record<string, number | null> {
    const mine = row(`clones balancer ${label}`);
    const out: Record<string, number | null> = {};
    for (const [peer, name] of [
      ['haproxy', 'Haproxy'],
      ['nginx', 'Nginx'],
    ] as const) {
      const other = rows.find((r) => r.name.startsWith(peer) && r.name.endsWith(label));
      out[`vs${name}${key}`] =
        mine?.rps && other?.rps ? Math.round((mine.rps / other.rps) * 100) / 100 : null;
      out[`vs${name}${key}ByCpu`] =
        mine?.cpuUsPerRequest && other?.cpuUsPerRequest
          ? Math.round((other.cpuUsPerRequest / mine.cpuUsPerRequest) * 100) / 100
          : null;
    }
    return out;
  }

  const fmt = (v: number | null | undefined, digits = 0) =>
    v === null || v === undefined ? '' : v.toFixed(digits);
  console.log(
    `\nbalancer benchmark: wrk -t1 -c${CONNECTIONS}, ${RUNS} × ${SECONDS} s interleaved (medians), ` +
      `${cpus().length} cores, clones: ${useNginx ? 'nginx' : 'node'}; load ${loadBefore[0]!.toFixed(1)} → ${loadAfter[0]!.toFixed(1)}\n`,
  );
  console.log('| configuration | req/s | p50 ms | p99 ms | CPU µs/req | errors | balancer ÷ this (req/s) |');
  console.log('|---|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    // Compared with the balancer measured the same way (plain, https h1.1 or h2).
    const mine = rows.find((o) => o.name.startsWith('clones balancer') && o.kind === r.kind);
    const x = r.rps && mine?.rps ? (mine.rps / r.rps).toFixed(2) : '';
    console.log(
      `| ${r.name} | ${r.rps ?? r.note} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.cpuUsPerRequest, 1)} | ${r.errors ?? ''} | ${x} |`,
    );
  }
  const check = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'met' : 'NOT met');
  console.log('\n| target (issue 3) | measured | |');
  console.log('|---|--:|---|');
  console.log(
    `| ≥ 0.4 × HAProxy (1 thread) | ${ratios.vsHaproxy ?? ''} (by CPU: ${ratios.vsHaproxyByCpu ?? ''}) | ${check(ratios.vsHaproxy == null ? null : ratios.vsHaproxy >= 0.4)} |`,
  );
  console.log(
    `| ≥ 2.5 × node-http-proxy | ${ratios.vsNodeHttpProxy ?? ''} (by CPU: ${ratios.vsNodeHttpProxyByCpu ?? ''}) | ${check(ratios.vsNodeHttpProxy == null ? null : ratios.vsNodeHttpProxy >= 2.5)} |`,
  );
  console.log(
    `| p99 < 3 ms at ${CONNECTIONS} connections | ${fmt(ours.p99, 2)} ms | ${check(ours.p99 === null ? null : ours.p99 < 3)} |`,
  );
  if (idle) {
    console.log(
      `| RSS with ${idle.connections} idle clients < 200 MB | ${idle.rssAfterMb} MB (idle: ${idle.rssBeforeMb} MB) | ${check(idle.rssAfterMb < 200)} |`,
    );
  }
  const https = ratios.vsHaproxyHttps ?? null;
  const h2ratio = ratios.vsHaproxyH2 ?? null;
  console.log(
    `| issue 10: HTTPS ≥ 0.4 × HAProxy (h1.1, wrk) | ${https ?? ''} (by CPU: ${ratios.vsHaproxyHttpsByCpu ?? ''}) | ${check(https === null ? null : https >= 0.4)} |`,
  );
  console.log(
    `| issue 10: HTTPS ≥ 0.4 × HAProxy (h2, h2load) | ${h2ratio ?? ''} (by CPU: ${ratios.vsHaproxyH2ByCpu ?? ''}) | ${check(h2ratio === null ? null : h2ratio >= 0.4)} |`,
  );
  if (starvation) {
    const b = starvation.balancer;
    console.log(
      `| issue 10: ${SLOW_UPLOADS} slow uploads: GETs all served, p99 < 100 ms | ${b.requests} GETs, ${b.errors} failed, p99 ${fmt(b.p99, 2)} ms | ${check(b.errors === 0 && b.requests > 0 && b.p99 < 100)} |`,
    );
    console.log(
      `\nstarvation: ${STARVE_RATE} GET/s for 10 s over 8 keep-alive connections while ${SLOW_UPLOADS} POSTs (Content-Length 1000000) send 1 byte/s\n`,
    );
    console.log('| target | req/s | p50 ms | p99 ms | GETs | failed | uploads still open |');
    console.log('|---|--:|--:|--:|--:|--:|--:|');
    for (const [name, r] of [
      ['clone hit directly (Node, reads uploads)', starvation.direct],
      ['clones balancer → that clone', starvation.balancer],
    ] as const) {
      console.log(
        `| ${name} | ${r.rps} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.requests} | ${r.errors} | ${r.uploadsOpen} |`,
      );
    }
  }

  const onHa = row('clones on HAProxy');
  const rawHa = row('raw HAProxy, equivalent config');
  const engines =
    onHa?.rps && rawHa?.rps && onHa.p99 !== null && rawHa.p99 !== null
      ? {
          rpsRatio: Math.round((onHa.rps / rawHa.rps) * 100) / 100,
          p99Ratio: Math.round((onHa.p99! / rawHa.p99!) * 100) / 100,
          beatsBuiltin: ours.rps !== null && onHa.rps > ours.rps && rawHa.rps > ours.rps,
          // Over TLS, against the hand-written TLS config (HAProxy's rows of the https kinds).
          ...tlsEngineRatios('https h1.1', 'Https'),
          ...tlsEngineRatios('https h2', 'H2'),
        }
      : null;
  function tlsEngineRatios(label: string, key: string): Record<string, number | null> {
    const on = row(`clones on HAProxy ${label}`);
    const raw = row(`haproxy (1 thread) ${label}`);
    const ok = on?.rps && raw?.rps && on.p99 !== null && raw.p99 !== null;
    return {
      [`rpsRatio${key}`]: ok ? Math.round((on!.rps! / raw!.rps!) * 100) / 100 : null,
      [`p99Ratio${key}`]: ok ? Math.round((on!.p99! / raw!.p99!) * 100) / 100 : null,
    };
  }
  if (engines) {
    console.log('\n| target (issue 13) | measured | |');
    console.log('|---|--:|---|');
    console.log(
      `| clones on HAProxy ≥ 0.9 × raw HAProxy req/s | ${engines.rpsRatio} | ${check(engines.rpsRatio >= 0.9)} |`,
    );
    console.log(`| p99 ≤ 1.2 × raw HAProxy p99 | ${engines.p99Ratio} | ${check(engines.p99Ratio <= 1.2)} |`);
    console.log(
      `| both beat the built-in engine | ${engines.beatsBuiltin} | ${check(engines.beatsBuiltin)} |`,
    );
    for (const [label, key] of [
      ['HTTPS h1.1', 'Https'],
      ['HTTPS h2', 'H2'],
    ] as const) {
      const tls = engines as unknown as Record<string, number | null>;
      const r = tls[`rpsRatio${key}`];
      const p = tls[`p99Ratio${key}`];
      // The TLS peer is HAProxy's minimal TLS config, not one equivalent to what clones generates (groups,
      // signed sticky cookies, HSTS): a figure to watch, with no target of its own.
      console.log(
        `| ${label}: clones on HAProxy ÷ minimal HAProxy TLS config (req/s, p99) | ${r ?? ''}, ${p ?? ''} | no target |`,
      );
    }
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
          h2load: version(H2LOAD, ['--version']),
        },
        settings: {
          connections: CONNECTIONS,
          seconds: SECONDS,
          warmup: WARMUP,
          runs: RUNS,
          clones: useNginx ? 'nginx' : 'node',
          h2StreamsPerConnection: H2_STREAMS,
          slowUploads: SLOW_UPLOADS,
        },
        rows,
        ratios,
        engines,
        runs: Object.fromEntries(configs.map((c) => [c.name, c.samples])),
        idle,
        starvation,
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
else if (mode === 'serve-upload-clone') serveUploadClone();
else await main();
