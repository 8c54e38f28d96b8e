// The summary, the ratios and the printed table of `npm run bench:session` (bench/session.ts runs the load).
import type { LoadResult } from './load.ts';

export const ROUTES = [
  { name: 'read', method: 'GET', path: '/read' },
  { name: 'write', method: 'POST', path: '/write' },
  { name: 'update', method: 'POST', path: '/update' },
] as const;
export type RouteName = (typeof ROUTES)[number]['name'];

/** A load run plus the app process's CPU time (user + system, all threads) per request it answered. */
export interface Run extends LoadResult {
  appCpuUsPerRequest: number;
}

export interface LostUpdates {
  final: number;
  lost: number;
  failed: number;
}

/** What one configuration measured, as the results file holds it. */
export interface ConfigSummary {
  label: string;
  clientSide: boolean;
  routes: Record<
    RouteName,
    { requestsPerSecond: number; p99Ms: number; appCpuUsPerRequest: number; runs: Run[] }
  >;
  lostUpdates: LostUpdates | null;
}

export type Ratios = Record<string, { value: number; target: number | null }>;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * One configuration's medians: requests/s and app CPU are the medians of the runs, p99 is the median run's.
 *
 * @example
 *   summarize('clones/session redis', false, { read: [run], write: [run], update: [run] }, lost);
 */
export function summarize(
  label: string,
  clientSide: boolean,
  runsByRoute: Record<RouteName, Run[]>,
  lostUpdates: LostUpdates | null,
): ConfigSummary {
  const routes = {} as ConfigSummary['routes'];
  for (const { name } of ROUTES) {
    const runs = runsByRoute[name];
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
  return { label, clientSide, routes, lostUpdates };
}

/** [name, numerator config, denominator config, route, target]; by app CPU the ratio is inverted. */
const RATIOS: Array<[string, string, string, RouteName, number | null]> = [
  ['readRedisVsExpressSession', 'clones-redis', 'express-session-redis', 'read', 1.25],
  ['writeRedisVsExpressSession', 'clones-redis', 'express-session-redis', 'write', 1.0],
  ['readRedisVsNoSession', 'clones-redis', 'none', 'read', 0.85],
  ['readExpressSessionVsNoSession', 'express-session-redis', 'none', 'read', null],
  // What one Redis round trip per request leaves of the no-session throughput, with no session code at all.
  ['readRedisFloorVsNoSession', 'redis-floor', 'none', 'read', null],
];
const BY_CPU = [
  'readRedisVsExpressSession',
  'writeRedisVsExpressSession',
  'readRedisVsNoSession',
  'readRedisFloorVsNoSession',
];

/**
 * The ratios issue 2's targets are stated in, from requests/s and (`…ByAppCpu`, less CPU is faster) from the
 * app's CPU time per request. A ratio whose configurations did not run (`--only`) is left out.
 *
 * @example
 *   ratios(summary).readRedisVsExpressSession; // { value: 1.63, target: 1.25 }
 */
export function ratios(summary: Record<string, ConfigSummary>): Ratios {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const out: Ratios = {};
  const byCpu: Ratios = {};
  for (const [name, a, b, route, target] of RATIOS) {
    const x = summary[a]?.routes[route];
    const y = summary[b]?.routes[route];
    if (!x || !y) continue;
    out[name] = { value: round(x.requestsPerSecond / y.requestsPerSecond), target };
    // On a shared machine CPU per request moves much less than requests/s: other processes take wall time.
    if (BY_CPU.includes(name)) {
      byCpu[`${name}ByAppCpu`] = { value: round(y.appCpuUsPerRequest / x.appCpuUsPerRequest), target };
    }
  }
  return { ...out, ...byCpu };
}

/**
 * Prints the markdown table (requests/s, p99, lost updates), the app CPU per request and the ratios.
 *
 * @example
 *   printTable(summary, ratios(summary), 3200);
 */
export function printTable(
  summary: Record<string, ConfigSummary>,
  ratioValues: Ratios,
  increments: number,
): void {
  const header = ['configuration', 'read req/s', 'p99 ms', 'write req/s', 'p99 ms', 'update req/s', 'p99 ms'];
  header.push('lost updates');
  const entries = Object.values(summary);
  const rows = entries.map(({ label, routes: r, lostUpdates: l, clientSide }) => {
    const failed = l?.failed ? ` (${l.failed} failed)` : '';
    const lostCell = !l ? 'n/a' : `${l.lost}/${increments}${clientSide ? '*' : ''}${failed}`;
    return [
      label,
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
  for (const { label, routes: r } of entries) {
    console.log(
      `  ${label.padEnd(widths[0]!)}  read ${r.read.appCpuUsPerRequest.toFixed(0).padStart(4)}` +
        `  write ${r.write.appCpuUsPerRequest.toFixed(0).padStart(4)}` +
        `  update ${r.update.appCpuUsPerRequest.toFixed(0).padStart(4)}`,
    );
  }
  if (entries.some((e) => e.clientSide)) {
    console.log(
      '\n* sealed cookie: one browser jar, the last response wins; no store can merge client-side sessions.',
    );
  }
  console.log('');
  for (const [name, { value, target }] of Object.entries(ratioValues)) {
    const verdict =
      target === null
        ? ''
        : value >= target
          ? `  (target >= ${target}: met)`
          : `  (target >= ${target}: NOT met)`;
    console.log(`${name.padEnd(36)} ${value.toFixed(3)}${verdict}`);
  }
}
