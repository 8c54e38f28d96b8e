// `npm run soak -- --minutes N --seed S [--users U] [--out DIR] [--faults kind,kind]`: the whole system under
// a client workload while faults are injected on a seeded schedule; then every checker runs on the history
// and the report is written (JSON + HTML). Exit 0 only when every checker passes. Needs root (test hosts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkAll, documentedCodes } from './checkers.ts';
import { FAULT_KINDS, inject, planFaults, seeded } from './faults.ts';
import type { FaultKind, History } from './history.ts';
import { htmlReport, summarize } from './report.ts';
import { repo, startSystem } from './system.ts';
import { runWorkload } from './workload.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    users: { type: 'string', default: '6' },
    out: { type: 'string', default: 'soak-report' },
    faults: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const seed = Number(values.seed);
const users = Number(values.users);
if (!(minutes > 0 && minutes <= 60) || !Number.isInteger(seed) || !(users >= 1 && users <= 64)) {
  process.stderr.write(
    'usage: npm run soak -- --minutes N (0-60] --seed S (integer) [--users 1-64] [--out DIR]\n',
  );
  process.exit(2);
}
const kinds = values.faults ? (values.faults.split(',') as FaultKind[]) : FAULT_KINDS;
const bad = kinds.filter((k) => !FAULT_KINDS.includes(k));
if (bad.length) {
  process.stderr.write(`--faults: unknown ${bad.join(', ')}; known: ${FAULT_KINDS.join(', ')}\n`);
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${line}\n`);
const durationMs = Math.round(minutes * 60_000);
const plan = planFaults(seed, durationMs, kinds);
log(`soak: seed ${seed}, ${minutes} min, ${users} users; fault schedule:`);
for (const f of plan) log(`  +${(f.at / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(20)} ${f.target}`);

const system = await startSystem({ log });
let exitCode = 1;
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
  log(`workload: ${users} users through 127.0.0.1:${system.port} for ${minutes} min`);
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
      try {
        const r = await inject(system, f);
        history.faults.push({ kind: f.kind, target: f.target, start, end: Date.now(), note: r.note });
        if (r.deploy) history.deploys.push(r.deploy);
        if (r.failoverAt) history.failovers.push({ at: r.failoverAt, windowMs: 1000 });
        log(
          `  +${((start - t0) / 1000).toFixed(1).padStart(6)} s  ${f.kind}: ${r.note} (${Date.now() - start} ms)`,
        );
      } catch (err) {
        history.faults.push({
          kind: f.kind,
          target: f.target,
          start,
          end: Date.now(),
          note: `could not inject: ${(err as Error).message}`,
        });
        log(
          `  +${((start - t0) / 1000).toFixed(1).padStart(6)} s  ${f.kind}: could not inject: ${(err as Error).message}`,
        );
      }
      until.at = Math.max(until.at, Date.now() + 15_000);
    }
  })();
  await Promise.all([workload, faults]);
  const codes = documentedCodes(readFileSync(join(repo, 'docs/errors.md'), 'utf8'));
  const results = checkAll(history, codes);
  const report = summarize(history, results, minutes);
  const out = resolve(values.out!);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `soak-${seed}.json`), `${JSON.stringify({ report, history }, null, 1)}\n`);
  writeFileSync(join(out, `soak-${seed}.html`), htmlReport(history, report));
  log(`\n${report.requests} requests, ${report.failed} failed (no answer or 5xx)`);
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
  log(
    `\n${report.passed ? 'PASS' : 'FAIL'}: ${join(out, `soak-${seed}.json`)}, ${join(out, `soak-${seed}.html`)}`,
  );
  exitCode = report.passed ? 0 : 1;
} finally {
  await system.stop();
}
process.exit(exitCode);
