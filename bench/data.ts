// npm run bench:data — a read-heavy workload (95% reads of Zipf-distributed keys, 5% writes) through 3 clones,
// in one run, against three set-ups: the primary only; 2 replicas without cache; 2 replicas with the Redis
// cache (cached() reads, write() write-through). Prints requests/s, p99 and the reads per second that reach
// the primary, and writes bench/results/data.json. Every server is started here on free loopback ports.
// The three set-ups run side by side (9 clone processes, the same PostgreSQL cluster, the same load loops) and
// the measured seconds are taken in turns of BENCH_SLICE_MS (ABC ABC ...): on a shared machine, load that comes
// and goes then weighs on every set-up alike, where one set-up after the other compared different minutes.
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DataClone, startDataClones } from '../test/data/fixtures/clones.ts';
import { startPostgres } from '../test/harness/postgres-server.ts';
import { startRedis } from '../test/harness/redis-server.ts';

const KEYS = 10_000;
const ZIPF_S = 1.0;
const WRITE_SHARE = 0.05;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 24);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = 2;
const SLICE_MS = Number(process.env.BENCH_SLICE_MS ?? 500);

interface Setup {
  label: string;
  mode: 'db' | 'cache';
  env: (urls: { primary: string; replicas: string; cache: string }) => Record<string, string>;
}

const SETUPS: Setup[] = [
  { label: 'primary only', mode: 'db', env: (u) => ({ DATABASE_URL: u.primary }) },
  {
    label: 'replicas, no cache',
    mode: 'db',
    env: (u) => ({ DATABASE_URL: u.primary, DATABASE_REPLICA_URLS: u.replicas }),
  },
  {
    label: 'replicas + cache',
    mode: 'cache',
    env: (u) => ({ DATABASE_URL: u.primary, DATABASE_REPLICA_URLS: u.replicas, CACHE_URL: u.cache }),
  },
];

interface Result {
  label: string;
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of reads and of writes alone: with 5% writes, the overall p99 is mostly the writes' tail. */
  p99ReadMs: number;
  p99WriteMs: number;
  failures: number;
  primaryReadsPerSecond: number;
  replicaReadsPerSecond: number;
  cacheHitRatio: number | null;
}

/** Zipf(s) over 0..n-1 by inverse CDF: a few keys are hot, most are cold, as in real catalogues. */
function zipf(n: number, s: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s;
    cdf[k] = sum;
  }
  return () => {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

let version = 1_000_000;

const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });

function call(method: string, url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function metrics(clones: DataClone[]) {
  let primary = 0;
  let replica = 0;
  let hits = 0;
  let misses = 0;
  for (const c of clones) {
    const m = (await (await fetch(`${c.url}/metrics`)).json()) as {
      reads: Record<string, number>;
      cacheHits: number;
      cacheMisses: number;
    };
    for (const [server, n] of Object.entries(m.reads)) {
      if (server.startsWith('primary')) primary += n;
      else replica += n;
    }
    hits += m.cacheHits;
    misses += m.cacheMisses;
  }
  return { primary, replica, hits, misses };
}

/** `CONNECTIONS` closed loops, each spreading its requests over the clones, for `seconds`. */
async function load(
  clones: DataClone[],
  mode: string,
  seconds: number,
  latencies: { reads: number[]; writes: number[] } | undefined,
) {
  const key = zipf(KEYS, ZIPF_S);
  const deadline = performance.now() + seconds * 1000;
  let failures = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, loop) => {
      let i = loop;
      while (performance.now() < deadline) {
        const clone = clones[i++ % clones.length]!;
        const id = key();
        const write = Math.random() < WRITE_SHARE;
        const url = write
          ? `${clone.url}/w/k${id}?v=${version++}&mode=${mode}`
          : `${clone.url}/r/k${id}?mode=${mode}`;
        const started = performance.now();
        const status = await call(write ? 'POST' : 'GET', url);
        (write ? latencies?.writes : latencies?.reads)?.push(performance.now() - started);
        if (status !== 200) failures++;
        n++;
      }
    }),
  );
  return { failures, n };
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** A set-up's clones and what its measured slices have gathered so far. */
interface Running {
  setup: Setup;
  clones: DataClone[];
  latencies: { reads: number[]; writes: number[] };
  failures: number;
  n: number;
  seconds: number;
  before: Awaited<ReturnType<typeof metrics>>;
}

function summary(r: Running, after: Awaited<ReturnType<typeof metrics>>): Result {
  const latencies = [...r.latencies.reads, ...r.latencies.writes].sort((a, b) => a - b);
  r.latencies.reads.sort((a, b) => a - b);
  r.latencies.writes.sort((a, b) => a - b);
  const hits = after.hits - r.before.hits;
  const misses = after.misses - r.before.misses;
  return {
    label: r.setup.label,
    requests: r.n,
    requestsPerSecond: Math.round(r.n / r.seconds),
    p50Ms: round(pct(latencies, 0.5)),
    p99Ms: round(pct(latencies, 0.99)),
    p99ReadMs: round(pct(r.latencies.reads, 0.99)),
    p99WriteMs: round(pct(r.latencies.writes, 0.99)),
    failures: r.failures,
    primaryReadsPerSecond: round((after.primary - r.before.primary) / r.seconds, 1),
    replicaReadsPerSecond: round((after.replica - r.before.replica) / r.seconds, 1),
    cacheHitRatio: r.setup.mode === 'cache' ? round(hits / Math.max(1, hits + misses), 4) : null,
  };
}

async function main() {
  const loadBefore = loadavg();
  const [pg, redis] = await Promise.all([startPostgres({ replicas: 2 }), startRedis()]);
  const results: Result[] = [];
  try {
    await pg.query('primary', 'CREATE TABLE items (id text PRIMARY KEY, v integer NOT NULL)');
    await pg.query('primary', `INSERT INTO items SELECT 'k' || g, g FROM generate_series(0, ${KEYS - 1}) g`);
    await sleep(1000); // replicas replay the load
    const urls = { primary: pg.primaryUrl, replicas: pg.replicaUrls.join(','), cache: redis.url };
    const running: Running[] = [];
    try {
      for (const setup of SETUPS) {
        const clones = await startDataClones(3, {
          ...setup.env(urls),
          CLONES_LOG_LEVEL: 'warn',
          // The benchmark's routes never touch the session (no cookie is sent): the store does not matter.
          SESSION_STORE: 'memory:',
          POOL_SIZE: '8',
        });
        running.push({
          setup,
          clones,
          latencies: { reads: [], writes: [] },
          failures: 0,
          n: 0,
          seconds: 0,
          before: { primary: 0, replica: 0, hits: 0, misses: 0 },
        });
      }
      // The same warm-up for every set-up (the cache starts cold and fills during it).
      for (const r of running) await load(r.clones, r.setup.mode, WARMUP_SECONDS, undefined);
      for (const r of running) r.before = await metrics(r.clones);
      for (let done = 0; done < SECONDS * 1000; done += SLICE_MS) {
        for (const r of running) {
          const started = performance.now();
          const { failures, n } = await load(r.clones, r.setup.mode, SLICE_MS / 1000, r.latencies);
          r.seconds += (performance.now() - started) / 1000;
          r.failures += failures;
          r.n += n;
        }
      }
      for (const r of running) results.push(summary(r, await metrics(r.clones)));
    } finally {
      await Promise.all(running.flatMap((r) => r.clones.map((c) => c.process.stop())));
    }
  } finally {
    agent.destroy();
    await Promise.all([pg.stop(), redis.stop()]);
  }

  const base = results[0]!;
  const cached = results[2]!;
  const primaryReduction = 1 - cached.primaryReadsPerSecond / Math.max(1e-9, base.primaryReadsPerSecond);
  console.log(
    `\nclones/data: ${CONNECTIONS} connections, ${SECONDS} s per set-up in turns of ${SLICE_MS} ms, 3 clones, ${KEYS} keys Zipf(${ZIPF_S}), ${WRITE_SHARE * 100}% writes\n`,
  );
  console.log(
    ['set-up'.padEnd(20), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8)]
      .concat(['p99 read'.padStart(9), 'p99 write'.padStart(10)])
      .concat([
        'primary reads/s'.padStart(16),
        'replica reads/s'.padStart(16),
        'hit ratio'.padStart(10),
        'fail'.padStart(5),
      ])
      .join(' '),
  );
  for (const r of results) {
    console.log(
      [
        r.label.padEnd(20),
        String(r.requestsPerSecond).padStart(8),
        r.p50Ms.toFixed(2).padStart(8),
        r.p99Ms.toFixed(2).padStart(8),
        r.p99ReadMs.toFixed(2).padStart(9),
        r.p99WriteMs.toFixed(2).padStart(10),
        r.primaryReadsPerSecond.toFixed(1).padStart(16),
        r.replicaReadsPerSecond.toFixed(1).padStart(16),
        (r.cacheHitRatio === null ? '-' : `${(r.cacheHitRatio * 100).toFixed(1)}%`).padStart(10),
        String(r.failures).padStart(5),
      ].join(' '),
    );
  }
  const done = {
    primaryReadsReduction: round(primaryReduction, 4),
    primaryReadsAtLeast90PercentFewer: primaryReduction >= 0.9,
    p99NoWorseThanPrimaryOnly: cached.p99Ms <= base.p99Ms,
  };
  console.log(
    `\nwith the cache the primary serves ${(primaryReduction * 100).toFixed(1)}% fewer reads (goal >= 90%: ${done.primaryReadsAtLeast90PercentFewer ? 'met' : 'NOT met'}); p99 ${cached.p99Ms} ms vs ${base.p99Ms} ms primary-only (${done.p99NoWorseThanPrimaryOnly ? 'met' : 'NOT met'})`,
  );
  const out = join(import.meta.dirname, 'results', 'data.json');
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: {
          cpu: cpus()[0]?.model,
          cores: cpus().length,
          memoryGiB: round(totalmem() / 2 ** 30, 1),
          node: process.version,
          loadAverageBefore: loadBefore.map((x) => round(x)),
          loadAverageAfter: loadavg().map((x) => round(x)),
        },
        workload: {
          keys: KEYS,
          zipfS: ZIPF_S,
          writeShare: WRITE_SHARE,
          connections: CONNECTIONS,
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          sliceMs: SLICE_MS,
          clones: 3,
        },
        results,
        done,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out}`);
}

await main();
