// The dashboard in a real browser: Debian's chromium driven by playwright-core, against a real
// `clones up` process and the real CLI. Screenshots go to docs/ (made here, never by hand).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import {
  deployCanary,
  load,
  repo,
  startUp,
  tempApp,
  touchApp,
  type Up,
  useSources,
} from '../fleet/fleet-harness.ts';
import { freePort } from '../harness/free-port.ts';
import { dashboardUrl, launchChromium } from './browser.ts';

useSources();
const app = tempApp();
let up: Up;
let adminPort: number;
let browser: Browser;
let page: Page;
let loginUrl: string;
const measured: Record<string, string> = {};

const adminToken = () => readFileSync(join(app.dir, '.clones/admin-token'), 'utf8').trim();
const base = () => `http://127.0.0.1:${adminPort}`;

/** The clone rows as the page shows them. */
function rows(p: Page) {
  return p.$$eval('#clones tbody tr', (trs) =>
    trs.map((tr) => ({
      id: (tr as HTMLElement).dataset.clone,
      state: (tr as HTMLElement).dataset.state,
      release: (tr as HTMLElement).dataset.release,
      restarts: tr.querySelector('.restarts')?.textContent,
    })),
  );
}

async function fleetStatus(): Promise<{
  release: string;
  clones: { id: string; pid: number; release: string }[];
}> {
  const res = await fetch(`${base()}/status`, { headers: { authorization: `Bearer ${adminToken()}` } });
  return (await res.json()) as never;
}

before(async () => {
  adminPort = await freePort();
  up = await startUp(app.dir, ['--clones', '3', '--admin-port', String(adminPort)]);
  loginUrl = await dashboardUrl(up);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await up?.stop();
  app.cleanup();
  console.log(`dashboard measurements: ${JSON.stringify(measured)}`);
});

test('without the token: the login page and nothing else', async () => {
  const context = await browser.newContext();
  const p = await context.newPage();
  const res = await p.goto(`${base()}/dashboard/`);
  assert.equal(res?.status(), 401);
  assert.equal(await p.locator('#clones').count(), 0, 'no fleet data on the login page');
  assert.equal(await p.locator('form input[name=token]').count(), 1);
  const events = await p.evaluate(async () => (await fetch('/dashboard/events')).status);
  assert.equal(events, 401);
  await p.fill('#token', 'not-the-token');
  await p.click('button[type=submit]');
  await p.waitForSelector('.error:has-text("not valid")');
  assert.equal(await p.locator('#clones').count(), 0);
  const scale = await p.evaluate(
    async () => (await fetch('/scale', { method: 'POST', body: '{"clones":1}' })).status,
  );
  assert.equal(scale, 401, 'the fleet API refuses actions without the admin token');
  await context.close();
});

test('the login link logs in once, and the page shows 3 serving clones', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  await page.goto(loginUrl);
  assert.equal(new URL(page.url()).pathname, '/dashboard/');
  const cookies = await context.cookies();
  assert.ok(
    cookies.some((c) => c.name === 'clones_dashboard' && c.httpOnly),
    'an HttpOnly session cookie',
  );
  await page.waitForFunction(
    () => document.querySelectorAll('#clones tbody tr[data-state="serving"]').length === 3,
  );
  // First paint of a fresh load with the cookie, 5 loads (the machine is shared: the median says more).
  const paints: number[] = [];
  const loads: number[] = [];
  for (let i = 0; i < 5; i++) {
    await page.goto(`${base()}/dashboard/`);
    await page.waitForFunction(() => document.querySelectorAll('#clones tbody tr').length === 3);
    // The paint entry is recorded once the frame is drawn, which on a busy machine can come after the DOM.
    const fcp = await page.waitForFunction(
      () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
      undefined,
      { timeout: 10_000 },
    );
    paints.push((await fcp.jsonValue()) as number);
    loads.push(
      await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        return nav.domContentLoadedEventEnd;
      }),
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  measured.firstContentfulPaintMs = median(paints).toFixed(0);
  measured.firstContentfulPaintSamplesMs = paints.map((p) => p.toFixed(0)).join(' ');
  measured.domContentLoadedMs = median(loads).toFixed(0);

  const other = await browser.newContext();
  const again = await other.newPage();
  const res = await again.goto(loginUrl);
  assert.equal(res?.status(), 401, 'the login link works once');
  await other.close();
});

test('the example shop: the status bar names the clone and release that served it; empty cart and orders say so', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const shop = await context.newPage();
  const res = await shop.goto(`http://127.0.0.1:${up.port}/`);
  assert.equal(res?.status(), 200);
  const headers = res!.headers();
  assert.equal(await shop.textContent('#served-clone'), headers['x-clones-clone']);
  assert.equal(await shop.textContent('#served-release'), headers['x-clones-release']!.slice(0, 12));
  assert.equal(await shop.getAttribute('#served-release', 'title'), headers['x-clones-release']);
  assert.match((await shop.textContent('#cart')) ?? '', /Your cart is empty/);
  assert.match((await shop.textContent('#orders')) ?? '', /Log in to see your orders/);
  // Keyboard only: the name field has a label, Enter logs in.
  await shop.getByLabel('Your name').fill('ada');
  await shop.keyboard.press('Enter');
  await shop.waitForSelector('text=Signed in as');
  assert.match((await shop.textContent('#orders')) ?? '', /No orders yet/);
  for (const item of ['cheese', 'apple', 'apple']) {
    await shop.click(`button[value=${item}]`);
  }
  assert.equal(await shop.textContent('#cart .total'), '$8.00');
  await shop.click('#cart button:has-text("Check out")');
  assert.match((await shop.textContent('#cart')) ?? '', /Your cart is empty/);
  assert.match((await shop.textContent('#orders')) ?? '', /Cheese, Apple, Apple\s*\$8\.00/);
  await shop.click('button[value=bread]');
  await shop.screenshot({ path: screenshotPath('shop.png'), fullPage: true });
  await context.close();
});

test('a canary deploy from the CLI shows each step while it runs, then the new release', async () => {
  const old = (await fleetStatus()).release;
  touchApp(join(app.dir, 'shop'), 'canary');
  // A little traffic (bounded: 2 loops, stopped below) so the charts and per-clone figures have data.
  const traffic = load(up.port, '/', 2);
  const deploy = deployCanary(app.dir, '25,50,100', '2s');
  // 100 promotes the canary (no watch step): the page shows 25% and 50% while the deploy runs.
  for (const weight of [25, 50]) {
    await page.waitForSelector(`#deploy-steps li:has-text("canary at ${weight}%")`, { timeout: 60_000 });
    assert.equal(deploy.child.exitCode, null, `canary at ${weight}% shows while the deploy still runs`);
  }
  const result = await deploy;
  await new Promise((r) => setTimeout(r, 1500));
  await traffic.stop();
  assert.equal(result.code, 0, result.stderr);
  await page.waitForSelector('#deploy-line[data-outcome="done"]');
  const now = (await fleetStatus()).release;
  assert.notEqual(now, old);
  await page.waitForFunction(
    (release) =>
      [...document.querySelectorAll('#clones tbody tr')].filter(
        (tr) =>
          (tr as HTMLElement).dataset.release === release && (tr as HTMLElement).dataset.state === 'serving',
      ).length === 3,
    now,
  );
  const latencies = await page.evaluate(
    () => (window as unknown as { __dashboard: { latencies: number[] } }).__dashboard.latencies,
  );
  assert.ok(latencies.length > 5, 'fleet events reached the page live');
  const sorted = [...latencies].sort((a, b) => a - b);
  measured.eventLatencyMedianMs = String(sorted[Math.floor(sorted.length / 2)]);
  measured.eventLatencyMaxMs = String(sorted.at(-1));
  measured.eventsSeen = String(latencies.length);
  await page.screenshot({ path: screenshotPath('dashboard.png'), fullPage: true });
  (globalThis as { oldRelease?: string }).oldRelease = old;
});

test('rollback from the page, confirmed with the admin token, converges the fleet', async () => {
  const old = (globalThis as { oldRelease?: string }).oldRelease!;
  await page.click('#rollback');
  await page.fill('#admin-token', adminToken());
  await page.click('#confirm-ok');
  await page.waitForSelector('#action-result[data-outcome="ok"]', { timeout: 90_000 });
  await page.waitForFunction(
    (release) =>
      [...document.querySelectorAll('#clones tbody tr')].filter(
        (tr) =>
          (tr as HTMLElement).dataset.release === release && (tr as HTMLElement).dataset.state === 'serving',
      ).length === 3,
    old,
  );
  assert.equal((await fleetStatus()).release, old);
  assert.match((await page.textContent('#deploy-line')) ?? '', /rollback/);
});

/** Clicks an action button, confirms it with the admin token, and waits for its outcome line. */
async function confirmAction(selector: string): Promise<string> {
  await page.evaluate(() => {
    const out = document.getElementById('action-result')!;
    out.textContent = '';
    delete out.dataset.outcome;
  });
  await page.click(selector);
  await page.fill('#admin-token', adminToken());
  await page.click('#confirm-ok');
  await page.waitForSelector('#action-result[data-outcome]', { timeout: 90_000 });
  return (await page.getAttribute('#action-result', 'data-outcome')) ?? '';
}

test('a canary paused, resumed and then aborted from the page; a clone drained from the page', async () => {
  const old = (await fleetStatus()).release;
  touchApp(join(app.dir, 'shop'), 'operator');
  const deploy = deployCanary(app.dir, '50,100', '60s');
  await page.waitForSelector('#deploy-steps li:has-text("canary at 50%")', { timeout: 60_000 });
  assert.equal(await confirmAction('#deploy-pause'), 'ok');
  await page.waitForSelector('#deploy-line[data-outcome="paused"]', { timeout: 5000 });
  assert.ok(await page.isVisible('#deploy-resume'), 'a paused canary offers Resume');
  assert.equal(await confirmAction('#deploy-resume'), 'ok');
  await page.waitForSelector('#deploy-line[data-outcome="running"]', { timeout: 5000 });
  assert.equal(await confirmAction('#deploy-abort'), 'ok');
  const result = await deploy;
  assert.equal(result.code, 1);
  assert.match(result.stderr, /aborted by an operator/);
  await page.waitForSelector('#deploy-line[data-outcome="rolled back"]', { timeout: 30_000 });
  assert.equal((await fleetStatus()).release, old);

  const victim = (await fleetStatus()).clones[0]!.id;
  assert.equal(await confirmAction(`button[data-drain="${victim}"]`), 'ok');
  await page.waitForFunction(
    (id) =>
      !document.querySelector(`#clones tbody tr[data-clone="${id}"]`) &&
      document.querySelectorAll('#clones tbody tr[data-state="serving"]').length === 3,
    victim,
    { timeout: 30_000 },
  );
  const now = await fleetStatus();
  assert.ok(!now.clones.some((c) => c.id === victim), `${victim} was replaced`);
  assert.equal(now.clones.length, 3);
});

test('a clone killed with SIGKILL shows its restart', async () => {
  const victim = (await fleetStatus()).clones[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await page.waitForFunction(
    (id) => {
      const tr = document.querySelector(`#clones tbody tr[data-clone="${id}"]`) as HTMLElement | null;
      return tr?.dataset.state === 'serving' && tr.querySelector('.restarts')?.textContent === '1';
    },
    victim.id,
    { timeout: 30_000 },
  );
  assert.ok(
    (await page.textContent('#events'))?.includes(`${victim.id}`),
    'the exit and restart are in the event list',
  );
});

test('the page survives a restart of the fleet without a reload', async () => {
  const snapshots = await page.evaluate(
    () => (window as unknown as { __dashboard: { snapshots: number } }).__dashboard.snapshots,
  );
  await up.stop();
  await page.waitForSelector('#live.off', { timeout: 15_000 });
  up = await startUp(app.dir, ['--clones', '3', '--admin-port', String(adminPort)]);
  await page.waitForFunction(
    (n) => (window as unknown as { __dashboard: { snapshots: number } }).__dashboard.snapshots > n,
    snapshots,
    { timeout: 30_000 },
  );
  await page.waitForSelector('#live.on');
  await page.waitForFunction(
    () => document.querySelectorAll('#clones tbody tr[data-state="serving"]').length === 3,
    undefined,
    { timeout: 30_000 },
  );
  assert.deepEqual((await rows(page)).length, 3);
});

/**
 * Where a screenshot goes: docs/ when CLONES_SCREENSHOTS=1 (refreshing the ones the docs show), else a
 * temporary directory, so that `npm test` leaves the checkout as it found it.
 */
function screenshotPath(name: string): string {
  if (process.env.CLONES_SCREENSHOTS === '1') return join(repo, 'docs', name);
  const dir = join(tmpdir(), 'clones-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
