// The fleet dashboard: one EventSource, a snapshot then live events, the DOM patched in place.
// Hand-written on purpose: a few KB, no build step, nothing from a CDN.

const $ = (id) => document.getElementById(id);
const short = (r) => (r ? String(r).slice(0, 12) : '');
const state = { sample: null, series: {}, events: [], deploy: null, releases: [], desired: null };
// What the browser tests read: when each fleet event reached the page.
const probe = { events: 0, latencies: [], snapshots: 0, lastEvent: null };
window.__dashboard = probe;

const COLORS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2'];
const colorOf = (() => {
  const seen = new Map();
  return (release) => {
    if (!seen.has(release)) seen.set(release, COLORS[seen.size % COLORS.length]);
    return seen.get(release);
  };
})();

function fmtMs(s) {
  if (s === null || s === undefined) return '–';
  const ms = s * 1000;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}
function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  return n > 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : `${Math.round(n / (1 << 20))} MiB`;
}
function fmtUptime(s) {
  if (s === undefined) return '–';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
function td(text, cls) {
  const cell = document.createElement('td');
  cell.textContent = text;
  if (cls) cell.className = cls;
  return cell;
}

function roleOf(clone, status) {
  if (status.canary && clone.release === status.canary.release) return 'canary';
  if (clone.release === status.release) return status.canary ? 'stable' : 'current';
  return 'old';
}

function renderClones() {
  const sample = state.sample;
  if (!sample) return;
  const status = sample.status;
  $('release').textContent = short(status.release);
  $('epoch').textContent = `epoch ${status.epoch} · ${status.strategy}`;
  const multi = Array.isArray(status.hosts) && status.hosts.length > 0;
  document.body.classList.toggle('multi-host', multi);
  const body = $('clones').tBodies[0];
  const rows = [];
  const sorted = [...status.clones].sort((a, b) =>
    `${a.host ?? ''}${a.id}`.localeCompare(`${b.host ?? ''}${b.id}`, undefined, { numeric: true }),
  );
  for (const c of sorted) {
    const key = c.host ? `${c.host}:${c.id}` : c.id;
    const s = sample.clones[key] ?? {};
    const tr = document.createElement('tr');
    tr.dataset.clone = key;
    tr.dataset.state = c.state;
    tr.dataset.release = c.release;
    tr.append(
      td(c.host ?? '', 'host-col'),
      td(c.id, 'id'),
      td(short(c.release), 'mono'),
      td(roleOf(c, status)),
      td(c.reason ? `${c.state}: ${c.reason}` : c.state, `state state-${c.state}`),
      td(c.health, `health-${c.health}`),
      td(String(c.port ?? '–'), 'num'),
      td(String(c.inFlight ?? 0), 'num'),
      td(s.rps === undefined ? '–' : String(s.rps), 'num'),
      td(fmtMs(s.p50), 'num'),
      td(fmtMs(s.p99), 'num'),
      td(s.errorRate ? `${(s.errorRate * 100).toFixed(1)}%` : '0%', s.errorRate > 0.01 ? 'num bad' : 'num'),
      td(String(c.restarts), c.restarts > 0 ? 'num warn restarts' : 'num restarts'),
      td(fmtUptime(s.uptime), 'num'),
      td(s.cpu === null || s.cpu === undefined ? '–' : `${s.cpu.toFixed(0)}%`, 'num'),
      td(fmtBytes(s.rss), 'num rss'),
      drainCell(key, c),
    );
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  renderHosts(multi ? status.hosts : [], status, sample);
  $('clone-count').textContent = `${status.clones.length} of ${status.clonesWanted} wanted`;
  const sticky = status.groupStickiness
    ? ` · a client keeps its group for ${Math.round(status.groupStickiness / 1000)} s`
    : '';
  $('groups').textContent =
    status.groups.map((g) => `${g.name} weight ${g.weight} (${g.healthy}/${g.targets} healthy)`).join(' · ') +
    (status.guard ? ` · guard ${status.guard.map(short).join(', ')}` : '') +
    sticky;
  if (status.lock && !state.deploy) {
    state.deploy = { action: status.lock.action, release: status.lock.release, steps: [], running: true };
  }
  // A failed deploy ends with its rollback (no done event): once the lock is gone it is over.
  if (state.deploy?.running && state.deploy.reason && !status.lock) {
    state.deploy.running = false;
    state.deploy.outcome = 'rolled back';
  }
  if (state.deploy?.running && status.deploy) {
    state.deploy.paused = status.deploy.paused;
    state.deploy.strategy ??= status.deploy.strategy;
  }
  renderDeploy();
}

/**
 * A host's state in words: serving (its agent answers and it is in service), unreachable (its agent does not
 * answer: the balancer's health checks decide about its clones), catching up (back, converging to the
 * desired release before it serves again).
 */
function hostState(h) {
  if (h.inService) return h.reachable ? 'serving' : 'unreachable';
  return h.reachable ? 'catching up' : 'out of service, unreachable';
}

function renderHosts(hosts, status, sample) {
  $('hosts-section').hidden = hosts.length === 0;
  if (hosts.length === 0) return;
  const rows = hosts.map((h) => {
    const mine = status.clones.filter((c) => c.host === h.name);
    const healthy = mine.filter((c) => c.health === 'healthy').length;
    let rps;
    for (const c of mine) {
      const r = sample.clones[`${h.name}:${c.id}`]?.rps;
      if (r !== undefined) rps = (rps ?? 0) + r;
    }
    const st = hostState(h);
    const tr = document.createElement('tr');
    tr.dataset.host = h.name;
    tr.dataset.state = st;
    tr.append(
      td(h.name, 'id'),
      td(h.address, 'mono'),
      td(st, st === 'serving' ? 'state state-serving' : st === 'catching up' ? 'state warn' : 'state bad'),
      td(short(h.release) || '–', 'mono'),
      td(
        `${healthy}/${h.clonesWanted ?? mine.length}`,
        healthy < (h.clonesWanted ?? mine.length) ? 'num warn' : 'num',
      ),
      td(rps === undefined ? '–' : String(Math.round(rps)), 'num'),
    );
    return tr;
  });
  $('hosts').tBodies[0].replaceChildren(...rows);
  const serving = hosts.filter((h) => h.inService && h.reachable).length;
  $('host-count').textContent = `${serving} of ${hosts.length} serving`;
}

function drainCell(key, clone) {
  const cell = document.createElement('td');
  if (clone.state !== 'serving') return cell;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'small';
  button.textContent = 'Drain…';
  button.dataset.drain = key;
  button.setAttribute('aria-label', `Drain and replace clone ${key}`);
  button.addEventListener('click', () =>
    act(
      `Drain clone ${key}? A new clone of its release starts first; then ${key} finishes its requests and stops.`,
      `/clones/${encodeURIComponent(key)}/drain`,
      {},
    ),
  );
  cell.append(button);
  return cell;
}

function renderDeploy() {
  const d = state.deploy;
  const line = $('deploy-line');
  if (!d) {
    $('deploy-actions').hidden = true;
    line.textContent = 'No deploy in progress.';
    $('deploy-steps').replaceChildren();
    return;
  }
  const where = d.from ? `${short(d.from)} → ${short(d.release)}` : short(d.release);
  const now = d.running ? (d.paused ? 'paused' : 'in progress') : d.outcome;
  const canary = d.running && d.strategy === 'canary' && d.action === 'deploy';
  $('deploy-actions').hidden = !d.running;
  $('deploy-pause').hidden = !canary || d.paused;
  $('deploy-resume').hidden = !canary || !d.paused;
  line.textContent = `${d.action} ${where}${d.strategy ? ` (${d.strategy})` : ''} · ${now}${d.running && d.step !== undefined ? ` · canary at ${d.step}%` : ''}${d.reason ? ` · ${d.reason}` : ''}`;
  line.className = d.running ? 'running' : d.outcome === 'done' ? 'ok' : 'bad';
  line.dataset.outcome = d.running ? (d.paused ? 'paused' : 'running') : d.outcome;
  $('deploy-steps').replaceChildren(
    ...d.steps.slice(-12).map((s) => {
      const li = document.createElement('li');
      li.textContent = s;
      return li;
    }),
  );
}

function eventText(e) {
  switch (e.type) {
    case 'clone':
      return `${e.host ? `${e.host}:` : ''}${e.clone} ${short(e.release)} ${e.state}${e.port ? ` :${e.port}` : ''}${e.reason ? ` (${e.reason})` : ''}${e.signal ? ` (${e.signal})` : ''}`;
    case 'deploy':
      return `${e.action} ${short(e.from)} → ${short(e.release)} (${e.strategy})`;
    case 'step':
      return `canary at ${e.weight}%, watching ${Math.round(e.wait / 1000)} s`;
    case 'desired':
      return `desired ${short(e.release)} epoch ${e.epoch}, ${e.clones} clones${e.canary ? ` + canary ${short(e.canary.release)}` : ''}`;
    case 'converged':
      return `converged on ${short(e.release)}`;
    case 'rollback':
      return `failed: ${e.reason}; rolling back to ${short(e.to)}`;
    case 'done':
      return `done ${short(e.release)}${e.ms !== undefined ? ` in ${(e.ms / 1000).toFixed(1)} s` : ''}`;
    case 'host':
      return `host ${e.host} ${e.step} ${e.outcome}${e.detail ? `: ${e.detail}` : ''}`;
    case 'paused':
      return `canary ${short(e.release)} paused`;
    case 'resumed':
      return `canary ${short(e.release)} resumed`;
    default:
      return e.type;
  }
}

function foldDeploy(e) {
  if (e.type === 'deploy') {
    state.deploy = {
      action: e.action,
      release: e.release,
      from: e.from,
      strategy: e.strategy,
      steps: [],
      running: true,
    };
  }
  const d = state.deploy;
  if (!d) return;
  const steps = [
    'deploy',
    'step',
    'desired',
    'converged',
    'rollback',
    'done',
    'rollback-failed',
    'paused',
    'resumed',
  ];
  if (steps.includes(e.type)) d.steps.push(eventText(e));
  if (e.type === 'step') d.step = e.weight;
  if (e.type === 'paused' || e.type === 'resumed') d.paused = e.type === 'paused';
  if (e.type === 'rollback') {
    d.reason = e.reason;
    d.paused = false;
  }
  if (e.type === 'rollback-failed') {
    d.running = false;
    d.outcome = 'rollback failed';
  }
  if (e.type === 'done') {
    d.running = false;
    d.outcome = d.reason ? 'rolled back' : 'done';
  }
}

function addEvent(e, live) {
  state.events.push(e);
  if (state.events.length > 200) state.events.shift();
  foldDeploy(e);
  if (live) {
    probe.events++;
    probe.lastEvent = e;
    if (e.at) probe.latencies.push(Date.now() - Date.parse(e.at));
    // A clone's state shows at once, before the next sample.
    if (e.type === 'clone' && state.sample) {
      const c = state.sample.status.clones.find((x) => x.id === e.clone && (x.host ?? '') === (e.host ?? ''));
      if (c) {
        c.state = e.state;
        if (e.port) c.port = e.port;
      }
      if (e.state === 'stopped')
        state.sample.status.clones = state.sample.status.clones.filter((x) => x !== c);
      renderClones();
    }
  }
}

function renderEvents() {
  $('events').replaceChildren(
    ...state.events
      .slice(-40)
      .reverse()
      .map((e) => {
        const li = document.createElement('li');
        const time = document.createElement('time');
        time.textContent = e.at ? new Date(e.at).toLocaleTimeString() : '';
        li.append(time, ` ${eventText(e)}`);
        li.dataset.type = e.type;
        return li;
      }),
  );
}

function renderReleases() {
  $('releases').replaceChildren(
    ...state.releases.slice(0, 8).map((r) => {
      const li = document.createElement('li');
      li.textContent = `${short(r.release)}  ${r.current ? '(current) ' : ''}${r.canary ? '(canary) ' : ''}built ${new Date(r.builtAt).toLocaleString()}${r.deployedAt ? `, deployed ${new Date(r.deployedAt).toLocaleString()}` : ''}`;
      return li;
    }),
  );
}

function drawChart(canvas, field, scale) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400;
  const h = canvas.clientHeight || 140;
  if (canvas.width !== w * dpr) {
    canvas.width = w * dpr;
    canvas.height = h * dpr;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const now = Date.now();
  const span = 15 * 60 * 1000;
  let max = 0;
  for (const points of Object.values(state.series))
    for (const p of points) max = Math.max(max, (p[field] ?? 0) * scale);
  max = max > 0 ? max * 1.15 : 1;
  ctx.strokeStyle = '#d4d4d8';
  ctx.fillStyle = '#52525b';
  ctx.font = '11px system-ui, sans-serif';
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5);
  ctx.lineTo(w, h - 0.5);
  ctx.stroke();
  ctx.fillText(max >= 10 ? String(Math.round(max)) : max.toFixed(2), 4, 12);
  for (const [release, points] of Object.entries(state.series)) {
    ctx.strokeStyle = colorOf(release);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      const v = p[field];
      if (v === null || v === undefined) {
        started = false;
        continue;
      }
      const x = w - ((now - p.t) / span) * w;
      const y = h - (v * scale * (h - 16)) / max - 1;
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    }
    ctx.stroke();
  }
}

function renderCharts() {
  drawChart($('chart-rps'), 'rps', 1);
  drawChart($('chart-p99'), 'p99', 1000);
  drawChart($('chart-err'), 'errors', 1);
  $('legend').replaceChildren(
    ...Object.keys(state.series).map((r) => {
      const span = document.createElement('span');
      span.style.setProperty('--c', colorOf(r));
      span.textContent = short(r);
      return span;
    }),
  );
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderClones();
    renderDeploy();
    renderEvents();
  });
}

function connect() {
  const source = new EventSource('/dashboard/events');
  const live = $('live');
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('snapshot', (m) => {
    const snap = JSON.parse(m.data);
    probe.snapshots++;
    state.sample = snap.sample;
    state.series = snap.series;
    state.releases = snap.releases;
    state.events = [];
    state.deploy = null;
    for (const e of snap.events) addEvent(e, false);
    if (state.deploy && !state.sample.status.lock && state.deploy.running) state.deploy.running = false;
    renderReleases();
    renderCharts();
    render();
  });
  source.addEventListener('fleet', (m) => {
    addEvent(JSON.parse(m.data), true);
    render();
  });
  source.addEventListener('sample', (m) => {
    const sample = JSON.parse(m.data);
    state.sample = sample;
    for (const [release, point] of Object.entries(sample.releases)) {
      const points = state.series[release] ?? [];
      state.series[release] = points;
      points.push(point);
      if (points.length > 900) points.shift();
    }
    const now = Date.now();
    for (const [release, points] of Object.entries(state.series))
      if (points.length === 0 || now - points[points.length - 1].t > 15 * 60 * 1000)
        delete state.series[release];
    renderCharts();
    render();
  });
}

// Actions go to the fleet API itself, the same endpoints the CLI uses, with the admin token.
async function act(text, path, body) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  const answer = await new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true }),
  );
  const token = $('admin-token').value.trim();
  const out = $('action-result');
  if (answer !== 'ok' || !token) {
    out.textContent = 'Cancelled.';
    return;
  }
  out.textContent = `${path.slice(1)}: running…`;
  try {
    const res = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const last = text.trim().split('\n').pop();
    const result = last ? JSON.parse(last) : {};
    // Streams end with a result event; the others (pause, resume, abort) answer JSON at once.
    const ok = res.ok && (result.type !== 'result' || result.ok);
    if (!res.ok) out.textContent = `${path.slice(1)} refused: ${result.error?.message ?? res.status}`;
    else if (ok) out.textContent = `${path.slice(1)}: done.`;
    else out.textContent = `${path.slice(1)} failed: ${result.error?.message ?? 'unknown error'}`;
    out.dataset.outcome = ok ? 'ok' : 'failed';
  } catch (err) {
    out.textContent = `${path.slice(1)} failed: ${err.message}`;
    out.dataset.outcome = 'failed';
  }
}

$('rollback').addEventListener('click', () =>
  act('Roll the fleet back to the release deployed before the current one?', '/rollback', {}),
);
$('scale').addEventListener('click', () => {
  const n = Number($('scale-n').value);
  act(`Run ${n} clone(s) of the current release?`, '/scale', { clones: n });
});
$('deploy-pause').addEventListener('click', () =>
  act('Pause the canary at its current step? Its 5xx checks go on.', '/deploy/pause', {}),
);
$('deploy-resume').addEventListener('click', () =>
  act('Resume the canary with the rest of its step?', '/deploy/resume', {}),
);
$('deploy-abort').addEventListener('click', () =>
  act('Abort the deploy in progress? The fleet rolls back to the release before it.', '/deploy/abort', {}),
);
window.addEventListener('resize', renderCharts);
connect();
