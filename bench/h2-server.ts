// npm run bench:h2 -- the cost of serving HTTP/2 itself: the balancer's own server side (src/balancer/h2)
// beside Node's http2 module, each as a bare TLS server answering a 61-byte body, no proxying.
//
// Both run in child processes at once; h2load (Debian's nghttp2-client) takes BENCH_RUNS (6) alternating
// runs of BENCH_SECONDS (3) s against each (rotating who goes first), with the balancer benchmark's h2 load:
// `-t1 -c6 -m10`. Reported: median req/s and median CPU µs per request of each server process (user +
// system from /proc), and their ratios. Prints a table and writes bench/results/h2-server.json. Both servers
// listen on 127.0.0.1 and are stopped by their pid.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:tls';
import { H2Session } from '../src/balancer/h2/h2-session.ts';
import { makeTestPki } from '../test/harness/tls-certs.ts';
import { cpuTicks, median, TICKS_PER_SECOND } from './proc-stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 6);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const H2LOAD = '/usr/bin/h2load';
const BODY = Buffer.from('hello from a bare HTTP/2 server, sixty-one bytes of body....\n');

type Kind = 'clones' | 'node';

/** The child: one bare server on `port`; prints "ready" when listening. */
function serve(kind: Kind, port: number, certFile: string, keyFile: string): void {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const length = String(BODY.length);
  if (kind === 'node') {
    const server = createSecureServer({ cert, key });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': length });
      stream.end(BODY);
    });
    server.listen(port, '127.0.0.1', () => console.log('ready'));
    return;
  }
  const limits = {
    maxConcurrentStreams: 100,
    initialWindowSize: 65_535,
    maxHeaderListSize: 16 * 1024,
    maxResets: 100,
    resetWindow: 10_000,
    maxUnread: 10 * 1024 * 1024,
    idleTimeout: 65_000,
  };
  const hooks = { onAbuse() {}, onError() {}, onClose() {} };
  const server = createServer({ cert, key, ALPNProtocols: ['h2'] }, (socket) => {
    new H2Session(socket, limits, hooks, (stream) => {
      stream.respond(200, ['content-type', 'text/plain', 'content-length', length]);
      stream.end(BODY);
    });
  });
  server.listen(port, '127.0.0.1', () => console.log('ready'));
}

function start(kind: Kind, port: number, cert: string, key: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, import.meta.filename, 'serve', kind, String(port), cert, key],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

function h2load(port: number, seconds: number): { requests: number; rps: number } {
  const out = spawnSync(H2LOAD, ['-t1', '-c6', '-m10', '-D', String(seconds), `https://127.0.0.1:${port}/`], {
    encoding: 'utf8',
  }).stdout;
  const requests = Number(/(\d+) succeeded/.exec(out)?.[1] ?? 0);
  return { requests, rps: requests / seconds };
}

async function main(): Promise<void> {
  if (!existsSync(H2LOAD)) {
    console.log('h2load not installed: apt-get install nghttp2-client');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'clones-bench-h2-'));
  const pki = makeTestPki(join(dir, 'pki'));
  const leaf = pki.leaf('bench', ['localhost']);
  const ports: Record<Kind, number> = { clones: 19_601, node: 19_602 };
  const kinds: Kind[] = ['clones', 'node'];
  const children: ChildProcess[] = [];
  const samples: Record<Kind, { rps: number; cpuUs: number }[]> = { clones: [], node: [] };
  const load = [loadavg()[0]!];
  try {
    for (const kind of kinds) children.push(await start(kind, ports[kind], leaf.fullchainFile, leaf.keyFile));
    const pid = (kind: Kind): number => children[kinds.indexOf(kind)]!.pid!;
    for (const kind of kinds) h2load(ports[kind], 1); // warm-up
    for (let run = 0; run < RUNS; run++) {
      const order = run % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        const before = cpuTicks(pid(kind))!;
        const { requests, rps } = h2load(ports[kind], SECONDS);
        const ticks = cpuTicks(pid(kind))! - before;
        const cpuUs = requests > 0 ? (ticks * 1e6) / TICKS_PER_SECOND / requests : Number.NaN;
        samples[kind].push({ rps, cpuUs });
        console.log(
          `run ${run + 1}/${RUNS} ${kind}: ${Math.round(rps)} req/s, ${cpuUs.toFixed(1)} µs CPU/req`,
        );
      }
      await sleep(200);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  load.push(loadavg()[0]!);
  const row = (kind: Kind) => ({
    rps: Math.round(median(samples[kind].map((s) => s.rps))),
    cpuUs: Number(median(samples[kind].map((s) => s.cpuUs)).toFixed(1)),
  });
  const ours = row('clones');
  const node = row('node');
  const ratios = {
    rps: Number((ours.rps / node.rps).toFixed(2)),
    cpu: Number((node.cpuUs / ours.cpuUs).toFixed(2)),
  };
  console.log(
    `\nbare HTTP/2 server, h2load -t1 -c6 -m10, ${RUNS} × ${SECONDS} s alternating (medians), ${cpus().length} cores, load ${load.map((l) => l.toFixed(1)).join(' → ')}\n`,
  );
  console.log('| server | req/s | CPU µs/req |\n|---|--:|--:|');
  console.log(`| clones (src/balancer/h2) | ${ours.rps} | ${ours.cpuUs} |`);
  console.log(`| node:http2 (stream API) | ${node.rps} | ${node.cpuUs} |`);
  console.log(`\nclones ÷ node: ${ratios.rps} × the req/s, ${ratios.cpu} × less CPU per request`);
  writeFileSync(
    join(import.meta.dirname, 'results', 'h2-server.json'),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, runs: RUNS, seconds: SECONDS, load, samples, medians: { clones: ours, node }, ratios }, null, 2)}\n`,
  );
}

if (process.argv[2] === 'serve') {
  const [, , , kind, port, cert, key] = process.argv;
  serve(kind as Kind, Number(port), cert!, key!);
} else await main();
