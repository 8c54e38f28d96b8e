// `npm run soak -- --minutes N --seed S [--engine builtin|haproxy|all] [--users U] [--out DIR] [--faults k,k]`:
// the whole system under a client workload while faults are injected on a seeded schedule, on each balancer
// engine one after the other (a fresh system for each); then every checker runs on each history and the report
// is written (JSON + HTML, one section per engine). Exit 0 only when every checker passes on every engine.
// Needs root (test hosts).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkAll, documentedCodes } from './checkers.ts';
import { FAULT_KINDS, inject, type PlannedFault, planFaults, seeded } from './faults.ts';
import type { FaultKind, History } from './history.ts';
import { htmlReport, type SoakReport, summarize } from './report.ts';
import { repo, type SoakEngine, type SoakSystem, startSystem } from './system.ts';
import { runWorkload } from './workload.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    users: { type: 'string', default: '6' },
    out: { type: 'string', default: 'soak-report' },
    faults: { type: 'string' },
    engine: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
const users = Number(values.users);
if (!(minutes > 0 && minutes <= 60) || !Number.isInteger(seed) || !(users >= 1 && users <= 64)) {
  process.stderr.write(
    'usage: npm run soak -- --minutes N (0-60] --seed S (integer) [--engine builtin|haproxy|all] [--users 1-64] [--out DIR]\n',
  );
  process.exit(2);
}
const kinds = values.faults ? (values.faults.split(',') as FaultKind[]) : FAULT_KINDS;
const bad = kinds.filter((k) => !FAULT_KINDS.includes(k));
if (bad.length) {
  process.stderr.write(`--faults: unknown ${bad.join(', ')}; known: ${FAULT_KINDS.join(', ')}\n`);
  process.exit(2);
}
// The same places the HAProxy engine looks (PATH, then the usual sbin directories).
const haproxyInstalled = [
  ...(process.env.PATH ?? '').split(':').filter(Boolean),
  '/usr/sbin',
  '/usr/local/sbin',
].some((dir) => existsSync(join(dir, 'haproxy')));
const engineFlag = values.engine ?? (haproxyInstalled ? 'all' : 'builtin');
if (!['builtin', 'haproxy', 'all'].includes(engineFlag)) {
  process.stderr.write(`--engine: expected builtin, haproxy or all, got ${JSON.stringify(engineFlag)}\n`);
  process.exit(2);
}
if (engineFlag !== 'builtin' && !haproxyInstalled) {
  process.stderr.write(`--engine ${engineFlag}: haproxy is not installed (apt-get install haproxy)\n`);
  process.exit(2);
}
const engines: SoakEngine[] = engineFlag === 'all' ? ['builtin', 'haproxy'] : [engineFlag as SoakEngine];

const log = (line: string) => process.stdout.write(`${line}\n`);
const durationMs = Math.round(minutes * 60_000);
const plan = planFaults(seed, durationMs, kinds);
log(`soak: seed ${seed}, ${minutes} min, ${users} users, engines ${engines.join(' then ')}; fault schedule:`);
for (const f of plan) log(`  +${(f.at / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(20)} ${f.target}`);

// Ctrl-C (or a test that gives up) stops what the soak started (hosts, servers, clones up) before it exits.
let current: SoakSystem | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the system ...`);
    void Promise.resolve(current?.stop()).finally(() => process.exit(130));
  });
}

const codes = documentedCodes(readFileSync(join(repo, 'docs/errors.md'), 'utf8'));
const runs: { history: History; report: SoakReport }[] = [];
const failedRuns: string[] = [];
for (const engine of engines) {
  log(`\n=== engine ${engine} ===`);
  try {
    const history = await soakOn(engine, plan);
    const report = summarize(history, checkAll(history, codes), minutes, engine);
    runs.push({ history, report });
    printReport(report);
  } catch (err) {
    // One engine that cannot even start must not hide the other's results: reported, and the soak fails.
    const message = `engine ${engine}: the soak did not complete: ${(err as Error).message}`;
    failedRuns.push(message);
    log(message);
  }
}

const out = resolve(values.out!);
mkdirSync(out, { recursive: true });
const passed = failedRuns.length === 0 && runs.every((r) => r.report.passed);
const json = join(out, `soak-${seed}.json`);
const html = join(out, `soak-${seed}.html`);
writeFileSync(
  json,
  `${JSON.stringify({ seed, minutes, passed, failedRuns, engines: runs.map((r) => ({ engine: r.report.engine, report: r.report, history: r.history })) }, null, 1)}\n`,
);
writeFileSync(html, htmlReport(runs, failedRuns));
log('');
for (const r of runs) log(`engine ${r.report.engine}: ${r.report.passed ? 'every checker passed' : 'FAIL'}`);
for (const f of failedRuns) log(f);
log(`${passed ? 'PASS' : 'FAIL'}: ${json}, ${html}`);
process.exit(passed ? 0 : 1);

/** One engine: a fresh system, the users and the fault schedule at once, the history once both are done. */
async function soakOn(engine: SoakEngine, plan: PlannedFault[]): Promise<History> {
  const system = await startSystem({ log, engine });
  current = system;
  try {
    const status = JSON.parse((await system.cli(['status', '--json'])).stdout) as { release: string };
    const history: History = {
      seed,
      timeoutMs: 10_000,
      initialRelease: status.release,
      ops: [],
      faults: [],
      deploys: [],
      failovers: [],
    };
    const t0 = Date.now();
    // The users keep going until the last fault is undone and 15 s more, so every recovery is seen.
    const until = { at: t0 + durationMs };
    log(`workload: ${users} users through 127.0.0.1:${system.port} (${engine}) for ${minutes} min`);
    const workload = runWorkload(
      {
        port: system.port,
        users,
        timeoutMs: history.timeoutMs,
        until,
        maxOps: 2_000_000,
        random: seeded(seed + 1),
      },
      history.ops,
    );
    const faults = (async () => {
      for (const f of plan) {
        const wait = t0 + f.at - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const start = Date.now();
        let note: string;
        try {
          const r = await inject(system, f);
          note = r.note;
          if (r.deploy) history.deploys.push(r.deploy);
          if (r.failoverAt) history.failovers.push({ at: r.failoverAt, windowMs: 1000 });
        } catch (err) {
          note = `could not inject: ${(err as Error).message}`;
        }
        history.faults.push({ kind: f.kind, target: f.target, start, end: Date.now(), note });
        log(
          `  +${((start - t0) / 1000).toFixed(1).padStart(6)} s  ${f.kind}: ${note} (${Date.now() - start} ms)`,
        );
        until.at = Math.max(until.at, Date.now() + 15_000);
      }
    })();
    await Promise.all([workload, faults]);
    return history;
  } finally {
    current = undefined;
    await system.stop();
  }
}

function printReport(report: SoakReport): void {
  log(`\n[${report.engine}] ${report.requests} requests, ${report.failed} failed (no answer or 5xx)`);
  log('fault                 target        failed  recovered');
  for (const f of report.faults)
    log(`${f.kind.padEnd(21)} ${f.target.padEnd(13)} ${String(f.failed).padStart(6)}  ${f.recoverMs} ms`);
  log('\nchecker                 checked  violations');
  for (const c of report.checkers) {
    const apart = c.inFailoverWindow
      ? `  (+${c.inFailoverWindow} lost inside the Sentinel failover window, counted apart)`
      : '';
    log(
      `${c.name.padEnd(23)} ${String(c.checked).padStart(7)}  ${String(c.violations).padStart(10)}${apart}`,
    );
    for (const e of c.examples) log(`    ${e}`);
  }
}
