// The sample Grafana dashboard only queries metrics that exist: each name in its expressions is one
// docs/metrics.md lists (the docs table is itself checked against the endpoints by the metrics tests).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

test('docs/grafana-dashboard.json queries only metrics docs/metrics.md lists', () => {
  const documented = new Set([...read('docs/metrics.md').matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!));
  const dashboard = JSON.parse(read('docs/grafana-dashboard.json')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const used = new Set<string>();
  for (const panel of dashboard.panels)
    for (const target of panel.targets)
      for (const m of target.expr.matchAll(/\b(clones_[a-z_]+)/g))
        used.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
  assert.ok(used.size >= 15, `the dashboard queries ${used.size} metrics`);
  assert.deepEqual([...used].filter((name) => !documented.has(name)).sort(), []);
  assert.ok(
    dashboard.panels.some((p) => /session/i.test(p.title)) &&
      dashboard.panels.some((p) => /replica/i.test(p.title)),
    'panels for the libraries metrics too',
  );
});
