import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readHistory } from '../desired-state.ts';
import type { Fleet } from '../fleet.ts';
import { cloneUsage } from '../process-usage.ts';

const DURATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

interface DeployTracker {
  started: number | undefined;
  action: string;
  /** By outcome: bucket counts (not cumulative), count, sum. */
  durations: Map<string, { buckets: number[]; count: number; sum: number }>;
}

const trackers = new WeakMap<Fleet, DeployTracker>();
const loopDelay = monitorEventLoopDelay({ resolution: 20 });

/** Deploy durations are only known from events: start watching the first time metrics are asked for. */
function tracker(fleet: Fleet): DeployTracker {
  let t = trackers.get(fleet);
  if (t) return t;
  const created: DeployTracker = { started: undefined, action: 'deploy', durations: new Map() };
  const observe = (outcome: string) => {
    if (created.started === undefined) return;
    const seconds = (Date.now() - created.started) / 1000;
    const key = `action="${created.action}",outcome="${outcome}"`;
    const d = created.durations.get(key) ?? {
      buckets: new Array<number>(DURATION_BUCKETS.length).fill(0),
      count: 0,
      sum: 0,
    };
    const i = DURATION_BUCKETS.findIndex((le) => seconds <= le);
    if (i >= 0) d.buckets[i]!++;
    d.count++;
    d.sum += seconds;
    created.durations.set(key, d);
    created.started = undefined;
  };
  fleet.watch((e) => {
    if (e.type === 'deploy') {
      created.started = Date.now();
      created.action = e.action;
    } else if (e.type === 'done') observe('ok');
    else if (e.type === 'rollback') observe('failed');
  });
  trackers.set(fleet, created);
  t = created;
  return t;
}

/**
 * The fleet's Prometheus text (`GET /metrics` on its admin API): clones by state and release, restarts,
 * deploys by outcome and their duration, each clone's CPU and memory (a host agent measures its own), this process's own metrics
 * (named as prom-client's default collectors name them), then the balancer's metrics. Names follow the
 * Prometheus conventions (base units, `_total` counters); see docs/metrics.md.
 *
 * @example
 *   res.end(fleetMetrics(fleet));
 */
export function fleetMetrics(fleet: Fleet): string {
  const deploys = tracker(fleet);
  loopDelay.enable();
  const status = fleet.status();
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, rows: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of rows) out.push(`${name}${labels ? `{${labels}}` : ''} ${value}`);
  };

  const byState = new Map<string, number>();
  for (const c of status.clones) {
    const key = `state="${c.state}",release="${c.release.slice(0, 12)}"`;
    byState.set(key, (byState.get(key) ?? 0) + 1);
  }
  metric('clones_fleet_clones', 'gauge', 'Clones by state and release.', [...byState]);
  metric('clones_fleet_clones_wanted', 'gauge', 'Clones the desired state asks for.', [
    ['', status.clonesWanted],
  ]);
  metric('clones_fleet_epoch', 'gauge', 'Epoch of the desired-state record applied.', [['', status.epoch]]);
  metric(
    'clones_fleet_clone_restarts_total',
    'counter',
    'Restarts of each clone after it exited.',
    status.clones.map((c) => [`clone="${c.id}",release="${c.release.slice(0, 12)}"`, c.restarts]),
  );
  const usage = status.clones.flatMap((c) => {
    const u = cloneUsage(c, status.hosts === null);
    return u ? [{ labels: `clone="${c.id}",release="${c.release.slice(0, 12)}"`, ...u }] : [];
  });
  metric(
    'clones_fleet_clone_cpu_seconds_total',
    'counter',
    'CPU time (user + system) of each clone (measured on its host).',
    usage.map((u) => [u.labels, u.cpuSeconds]),
  );
  metric(
    'clones_fleet_clone_resident_memory_bytes',
    'gauge',
    'Resident memory of each clone (measured on its host).',
    usage.map((u) => [u.labels, u.rss]),
  );

  const outcomes = new Map<string, number>();
  for (const h of readHistory(fleet.paths.history)) {
    const key = `action="${h.action}",outcome="${h.outcome}"`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  metric(
    'clones_fleet_deploys_total',
    'counter',
    'Deploys, rollbacks and scales by outcome (from the fleet history).',
    [...outcomes],
  );
  out.push(
    '# HELP clones_fleet_deploy_duration_seconds Time from the start of a deploy or rollback to its end.',
    '# TYPE clones_fleet_deploy_duration_seconds histogram',
  );
  for (const [labels, d] of deploys.durations) {
    let sum = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      sum += d.buckets[i]!;
      out.push(`clones_fleet_deploy_duration_seconds_bucket{${labels},le="${le}"} ${sum}`);
    });
    out.push(`clones_fleet_deploy_duration_seconds_bucket{${labels},le="+Inf"} ${d.count}`);
    out.push(`clones_fleet_deploy_duration_seconds_sum{${labels}} ${d.sum}`);
    out.push(`clones_fleet_deploy_duration_seconds_count{${labels}} ${d.count}`);
  }

  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  metric('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [
    ['', cpu.user / 1e6],
  ]);
  metric('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [
    ['', cpu.system / 1e6],
  ]);
  metric('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [
    ['', (cpu.user + cpu.system) / 1e6],
  ]);
  metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [['', mem.rss]]);
  metric('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [
    ['', Math.round(Date.now() / 1000 - process.uptime())],
  ]);
  metric('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', [
    ['', mem.heapUsed],
  ]);
  metric('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', [
    ['', mem.heapTotal],
  ]);
  metric('nodejs_eventloop_lag_p99_seconds', 'gauge', 'The 99th percentile of event loop delay.', [
    ['', Number.isNaN(loopDelay.percentile(99)) ? 0 : loopDelay.percentile(99) / 1e9],
  ]);
  return `${out.join('\n')}\n${fleet.balancer.metrics()}`;
}
