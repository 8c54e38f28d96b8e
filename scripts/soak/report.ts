// The soak's report: per fault, the requests that failed and the time to recover; totals per checker; a JSON
// file; and a self-contained HTML page with a timeline (faults as bands; req/s, p99 and errors/s as lines).
import type { CheckResult } from './checkers.ts';
import type { Fault, History, Op } from './history.ts';

export interface FaultReport {
  kind: string;
  target: string;
  start: number;
  end: number;
  note: string;
  /** Requests sent from the fault's start until the next fault's (or the end) that got no 2xx/3xx/4xx. */
  failed: number;
  /** From the fault's start to the end of the last failed request in its window; 0 when none failed. */
  recoverMs: number;
}

export interface SoakReport {
  /** The balancer engine this run had (`clones up --balancer`). */
  engine: string;
  seed: number;
  minutes: number;
  requests: number;
  failed: number;
  passed: boolean;
  faults: FaultReport[];
  checkers: {
    name: string;
    checked: number;
    violations: number;
    inFailoverWindow?: number;
    examples: string[];
  }[];
}

const failedOp = (op: Op) => op.status === 0 || op.status >= 500;
// Not Math.max(...values): a 10-minute history has more ops than a call can take arguments.
const maxOf = (values: Iterable<number>, start = Number.NEGATIVE_INFINITY) => {
  let m = start;
  for (const v of values) if (v > m) m = v;
  return m;
};
const minOf = (values: Iterable<number>) => -maxOf([...values].map((v) => -v));

/**
 * Builds the report from the history and the checkers' results.
 *
 * @example
 *   const report = summarize(history, checkAll(history, codes), 3);
 */
export function summarize(
  history: History,
  results: CheckResult[],
  minutes: number,
  engine: string,
): SoakReport {
  const faults = [...history.faults].sort((a, b) => a.start - b.start);
  const lastEnd = maxOf(history.ops.map((o) => o.end).filter(Number.isFinite), 0);
  const perFault = faults.map((f: Fault, i): FaultReport => {
    const until = faults[i + 1]?.start ?? lastEnd + 1;
    const failed = history.ops.filter((o) => o.start >= f.start && o.start < until && failedOp(o));
    const lastFailed = maxOf(
      failed.map((o) => o.end),
      f.start,
    );
    return {
      kind: f.kind,
      target: f.target,
      start: f.start,
      end: f.end,
      note: f.note ?? '',
      failed: failed.length,
      recoverMs: failed.length ? lastFailed - f.start : 0,
    };
  });
  const checkers = results.map((r) => ({
    name: r.name,
    checked: r.checked,
    violations: r.violations.length,
    ...(r.inFailoverWindow ? { inFailoverWindow: r.inFailoverWindow.length } : {}),
    examples: r.violations.slice(0, 5).map((v) => `op ${v.op}: ${v.message}`),
  }));
  return {
    engine,
    seed: history.seed,
    minutes,
    requests: history.ops.length,
    failed: history.ops.filter(failedOp).length,
    passed: results.every((r) => r.violations.length === 0),
    faults: perFault,
    checkers,
  };
}

/**
 * A self-contained HTML page with one section per engine run (see `htmlSection`), failed starts included.
 *
 * @example
 *   writeFileSync('soak.html', htmlReport([{ history, report }]));
 */
export function htmlReport(runs: { history: History; report: SoakReport }[], failed: string[] = []): string {
  const passed = runs.length > 0 && failed.length === 0 && runs.every((r) => r.report.passed);
  const first = runs[0]?.report;
  return `<!doctype html><meta charset="utf-8"><title>clones soak${first ? `, seed ${first.seed}` : ''}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}</style>
<h1>clones soak: ${passed ? 'every checker passed on every engine' : 'violations found, or a run did not complete'}</h1>
${failed.map((f) => `<p style="color:#c00">${esc(f)}</p>`).join('\n')}
${runs.map((r) => htmlSection(r.history, r.report)).join('\n')}`;
}

/**
 * One engine's section: the totals, a timeline with faults as bands and req/s, p99 latency and errors/s per
 * second as inline SVG lines, the checker and the per-fault tables.
 *
 * @example
 *   const html = htmlSection(history, report);
 */
export function htmlSection(history: History, report: SoakReport): string {
  const ops = history.ops.filter((o) => Number.isFinite(o.end));
  const t0 = minOf(ops.map((o) => o.start));
  const seconds = Math.max(1, Math.ceil((maxOf(ops.map((o) => o.end)) - t0) / 1000));
  const buckets = Array.from({ length: seconds }, () => ({ n: 0, errors: 0, latencies: [] as number[] }));
  for (const o of ops) {
    const b = buckets[Math.min(seconds - 1, Math.floor((o.start - t0) / 1000))]!;
    b.n++;
    if (failedOp(o)) b.errors++;
    b.latencies.push(o.end - o.start);
  }
  const p99 = (l: number[]) =>
    l.length ? [...l].sort((a, b) => a - b)[Math.min(l.length - 1, Math.floor(l.length * 0.99))]! : 0;
  const W = 1000;
  const H = 120;
  const x = (s: number) => (s / seconds) * W;
  const line = (values: number[], color: string, label: string) => {
    const max = maxOf(values, 1);
    const points = values
      .map((v, i) => `${x(i + 0.5).toFixed(1)},${(H - (v / max) * (H - 10)).toFixed(1)}`)
      .join(' ');
    const bands = history.faults
      .map((f) => {
        const a = x((f.start - t0) / 1000);
        const w = Math.max(2, x((Math.max(f.end, f.start + 500) - f.start) / 1000));
        return `<rect x="${a.toFixed(1)}" y="0" width="${w.toFixed(1)}" height="${H}" fill="#f5a623" opacity="0.25"><title>${esc(f.kind)} ${esc(f.target)}</title></rect>`;
      })
      .join('');
    return `<h4>${esc(label)} (max ${Math.round(max)})</h4><svg viewBox="0 0 ${W} ${H}" width="100%" height="${H}" style="background:#fafafa;border:1px solid #ddd">${bands}<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points}"/></svg>`;
  };
  const rows = report.faults
    .map(
      (f) =>
        `<tr><td>${((f.start - t0) / 1000).toFixed(1)} s</td><td>${esc(f.kind)}</td><td>${esc(f.target)}</td><td>${f.failed}</td><td>${f.recoverMs} ms</td><td>${esc(f.note)}</td></tr>`,
    )
    .join('');
  const checks = report.checkers
    .map(
      (c) =>
        `<tr><td>${esc(c.name)}</td><td>${c.checked}</td><td style="color:${c.violations ? '#c00' : '#080'}">${c.violations}</td><td>${c.inFailoverWindow ?? ''}</td><td>${c.examples.map(esc).join('<br>')}</td></tr>`,
    )
    .join('');
  return `<h2>Engine ${esc(report.engine)}: ${report.passed ? 'every checker passed' : 'violations found'}</h2>
<p>seed ${report.seed}, ${report.minutes} min, ${report.requests} requests, ${report.failed} failed (no answer or 5xx). Faults are the orange bands.</p>
${line(
  buckets.map((b) => b.n),
  '#2a6ebb',
  'requests per second',
)}
${line(
  buckets.map((b) => p99(b.latencies)),
  '#7b3fb5',
  'p99 latency, ms',
)}
${line(
  buckets.map((b) => b.errors),
  '#c0392b',
  'failed requests per second',
)}
<h3>Checkers</h3><table><tr><th>checker</th><th>checked</th><th>violations</th><th>in failover window</th><th>examples</th></tr>${checks}</table>
<h3>Faults</h3><table><tr><th>at</th><th>fault</th><th>target</th><th>failed requests</th><th>recovered after</th><th>what</th></tr>${rows}</table>`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
