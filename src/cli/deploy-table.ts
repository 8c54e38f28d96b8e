import type { FleetEvent, FleetStatus } from '../fleet/index.ts';

/** One clone as the live table shows it. */
export interface CloneRow {
  id: string;
  release: string;
  state: string;
  port?: number | undefined;
  health?: string | undefined;
  inFlight?: number | undefined;
  reason?: string | undefined;
  /** When an event last changed the row (ms): a status poll sent before that is older news. */
  changedAt?: number | undefined;
}

/** What the live table knows about a running deploy, built from its events and status polls. */
export interface DeployView {
  action: string;
  strategy: string;
  /** The release being rolled out, and the one it replaces. */
  release?: string | undefined;
  from?: string | undefined;
  /** The canary weight of the current step, in percent. */
  step?: number | undefined;
  /** Balancer group weights (group name = first 12 hex digits of a release). */
  weights: Record<string, number>;
  /** Group stickiness of this deploy, ms (null: the balancer's default). */
  sticky?: number | null | undefined;
  startedAt: number;
  clones: Map<string, CloneRow>;
}

/**
 * A fresh view, before the first event.
 *
 * @example
 *   const view = newView('deploy', Date.now());
 */
export function newView(action: string, startedAt: number): DeployView {
  return { action, strategy: '', weights: {}, startedAt, clones: new Map() };
}

/**
 * Folds one fleet event into the view (mutates and returns it).
 *
 * @example
 *   applyEvent(view, { type: 'clone', clone: 'c4', release, state: 'serving', port: 41234 });
 */
export function applyEvent(view: DeployView, event: FleetEvent, now = Date.now()): DeployView {
  switch (event.type) {
    case 'deploy':
      view.action = String(event.action ?? view.action);
      view.strategy = String(event.strategy ?? '');
      view.release = event.release as string;
      view.from = event.from as string;
      break;
    case 'desired': {
      const byRelease = (event.weights ?? {}) as Record<string, number>;
      // Empty weights: the fleet weighs groups by their serving clones; the status polls tell.
      view.weights = Object.fromEntries(Object.entries(byRelease).map(([r, w]) => [r.slice(0, 12), w]));
      if (event.sticky !== undefined) view.sticky = event.sticky as number | null;
      view.strategy ||= String(event.strategy ?? '');
      // The record that makes the new release the desired one ends the canary steps.
      if (event.release === view.release && !event.canary) view.step = undefined;
      break;
    }
    case 'step':
      view.step = Number(event.weight);
      break;
    case 'clone': {
      const id = String(event.clone);
      const row = view.clones.get(id) ?? { id, release: String(event.release ?? ''), state: '' };
      row.release = String(event.release ?? row.release);
      row.state = String(event.state);
      if (typeof event.port === 'number') row.port = event.port;
      row.reason = typeof event.reason === 'string' ? event.reason : undefined;
      // Health is the balancer's word; a clone that changed state has not been checked in it yet.
      if (row.state !== 'serving') row.health = undefined;
      if (row.state !== 'serving' && row.state !== 'draining') row.inFlight = undefined;
      row.changedAt = now;
      view.clones.set(id, row);
      break;
    }
    default:
      break;
  }
  return view;
}

/**
 * Folds a `GET /status` answer, asked for at `sentAt`, into the view: health, in-flight, ports and group
 * weights. Rows an event changed after `sentAt` keep their newer state. Clones the status no longer lists
 * keep their last row, shown as stopped.
 *
 * @example
 *   const sentAt = Date.now();
 *   applyStatus(view, (await client.get('/status')) as FleetStatus, sentAt);
 */
export function applyStatus(view: DeployView, status: FleetStatus, sentAt = Date.now()): DeployView {
  const fresh = (row: CloneRow) => row.changedAt !== undefined && row.changedAt >= sentAt;
  for (const c of status.clones) {
    const known = view.clones.get(c.id);
    if (known && fresh(known)) {
      if (known.state === c.state) {
        known.health = c.health;
        known.inFlight = c.inFlight;
      }
      continue;
    }
    const row = known ?? { id: c.id, release: c.release, state: c.state };
    row.release = c.release;
    row.state = c.state;
    row.port = c.port;
    row.health = c.health;
    row.inFlight = c.inFlight;
    if (c.reason) row.reason = c.reason;
    view.clones.set(c.id, row);
  }
  const listed = new Set(status.clones.map((c) => c.id));
  for (const row of view.clones.values()) {
    if (!listed.has(row.id) && row.state !== 'failed' && !fresh(row)) {
      row.state = 'stopped';
      row.health = undefined;
      row.inFlight = undefined;
    }
  }
  if (status.groups.length > 0)
    view.weights = Object.fromEntries(status.groups.map((g) => [g.name, g.weight]));
  return view;
}

const COLUMNS = ['CLONE', 'RELEASE', 'GROUP', 'STATE', 'HEALTH', 'PORT', 'IN-FLIGHT'] as const;

/**
 * The live table as lines: a header (action, strategy, releases, canary step, weights, stickiness,
 * elapsed time), then one row per clone (id, release, group role and its share of traffic, state,
 * health, port, in-flight requests). Pure: the same view and clock give the same lines. When there are
 * more clones than `maxLines` allows, the last line says how many are not shown.
 *
 * @example
 *   renderTable(view, Date.now(), process.stdout.rows - 1).join('\n');
 */
export function renderTable(view: DeployView, now: number, maxLines = Number.POSITIVE_INFINITY): string[] {
  const short = (r: string | undefined) => (r ? r.slice(0, 12) : '?');
  const head = [
    `${view.action || 'deploy'}${view.strategy ? ` ${view.strategy}` : ''}`,
    view.release ? `${short(view.from)} -> ${short(view.release)}` : '',
    view.step !== undefined ? `step ${view.step}%` : '',
    weightsText(view),
    view.sticky ? `sticky ${durationText(view.sticky)}` : '',
    `${((now - view.startedAt) / 1000).toFixed(1)} s`,
  ].filter(Boolean);
  const total = Object.values(view.weights).reduce((a, b) => a + b, 0);
  const rows = [...view.clones.values()]
    .sort(
      (a, b) => Number(a.id.replace(/\D/g, '')) - Number(b.id.replace(/\D/g, '')) || a.id.localeCompare(b.id),
    )
    .map((c) => {
      const group = c.release.slice(0, 12);
      const weight = view.weights[group];
      const role = roleOf(view, c.release);
      const share = weight !== undefined && total > 0 ? ` ${Math.round((weight * 100) / total)}%` : '';
      return [
        c.id,
        group,
        `${role}${share}`.trim(),
        c.state,
        c.health ?? '-',
        c.port ? String(c.port) : '-',
        c.inFlight !== undefined ? String(c.inFlight) : '-',
        c.reason ? c.reason.split('\n')[0]!.slice(0, 60) : '',
      ];
    });
  const widths = COLUMNS.map((name, i) => Math.max(name.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell))
      .join('  ')
      .trimEnd();
  const out = [head.join('  '), line(COLUMNS)];
  const room = Math.max(1, maxLines - out.length);
  const shown = rows.length > room ? rows.slice(0, room - 1) : rows;
  for (const r of shown) out.push(line(r));
  if (shown.length < rows.length) out.push(`... ${rows.length - shown.length} more clone(s)`);
  return out;
}

/** What a release is to this deploy: the one rolled out (new, or canary during the steps), the old one. */
function roleOf(view: DeployView, release: string): string {
  if (view.release === undefined) return ''; // scale: one release, nothing to tell apart
  if (release === view.release)
    return view.strategy === 'canary' && view.step !== undefined ? 'canary' : 'new';
  return release === view.from ? 'old' : 'other';
}

function weightsText(view: DeployView): string {
  const entries = Object.entries(view.weights).filter(([, w]) => w > 0);
  if (entries.length < 2) return '';
  return `weights ${entries.map(([g, w]) => `${g}=${w}`).join(' ')}`;
}

/** 3600000 -> "1h", 90000 -> "90s". */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
