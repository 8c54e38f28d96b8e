import assert from 'node:assert/strict';

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"';
const SAMPLE = new RegExp(`^(${NAME})(\\{${LABEL}(?:,${LABEL})*\\})? (-?[0-9][0-9.eE+-]*|NaN|\\+Inf|-Inf)$`);

/** One parsed page: every sample by `name{labels}` exactly as written, and each metric's TYPE. */
export interface PrometheusPage {
  samples: Map<string, number>;
  types: Map<string, string>;
}

/**
 * Parses a text exposition (0.0.4) strictly, failing the test on any line that is not a HELP, a TYPE or a
 * `name{labels} value` sample, on a sample before its metric's TYPE, and on a TYPE given twice.
 *
 * @example
 *   const page = parsePrometheus(await db.prometheus());
 *   assert.equal(page.samples.get('clones_data_writes_total'), 1);
 */
export function parsePrometheus(text: string): PrometheusPage {
  assert.ok(text.endsWith('\n'), 'the page ends with a newline');
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]!), `TYPE of ${type[1]} given once`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP \S+ \S/.test(line)) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `a valid sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const family = types.has(name) ? name : base;
    assert.ok(types.has(family), `TYPE of ${family} comes before its sample ${line}`);
    if (family !== name) assert.equal(types.get(family), 'histogram', `${name} belongs to a histogram`);
    if (types.get(family) === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} ends in _total`);
    samples.set(`${name}${m[2] ?? ''}`, Number(m[3]));
  }
  return { samples, types };
}

/**
 * One series of a histogram: its buckets (asserted cumulative, `+Inf` last and equal to `_count`) and count.
 *
 * @example
 *   const { count } = histogramSeries(page, 'clones_session_store_duration_seconds', 'op="get"');
 */
export function histogramSeries(
  page: PrometheusPage,
  name: string,
  labels: string,
): { buckets: [string, number][]; count: number; sum: number } {
  const prefix = `${name}_bucket{${labels},le="`;
  const buckets = [...page.samples]
    .filter(([key]) => key.startsWith(prefix))
    .map(([key, n]) => [key.slice(prefix.length, -2), n] as [string, number]);
  assert.ok(buckets.length > 1, `${name}{${labels}} has buckets`);
  assert.equal(buckets.at(-1)![0], '+Inf');
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i]![1] >= buckets[i - 1]![1], `${name}{${labels}} buckets are cumulative`);
    if (i < buckets.length - 1) assert.ok(Number(buckets[i]![0]) > Number(buckets[i - 1]![0]), 'bounds rise');
  }
  const count = page.samples.get(`${name}_count{${labels}}`);
  const sum = page.samples.get(`${name}_sum{${labels}}`);
  assert.ok(count !== undefined && sum !== undefined, `${name}{${labels}} has _count and _sum`);
  assert.equal(buckets.at(-1)![1], count, `${name}{${labels}}: +Inf bucket equals _count`);
  return { buckets, count, sum };
}
