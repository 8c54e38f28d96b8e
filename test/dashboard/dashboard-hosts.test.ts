// The dashboard of a fleet across hosts, in a real browser: the hosts panel shows each host's state, release
// and clones, follows a host whose link goes down and comes back, and the clones of remote hosts show CPU
// and RSS measured by their host agents.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startUp, tempApp, type Up, useTestHosts } from '../fleet/fleet-harness.ts';
import { hostsDiagnosis, hostsStatus, UP_ARGS } from '../fleet/hosts-harness.ts';
import { startTestHosts, type TestHosts } from '../harness/hosts.ts';
import { dashboardUrl, launchChromium } from './browser.ts';

/** The host rows as the page shows them. */
function hostRows(p: Page) {
  return p.$$eval('#hosts tbody tr', (trs) =>
    trs.map((tr) => ({
      host: (tr as HTMLElement).dataset.host,
      state: (tr as HTMLElement).dataset.state,
      cells: [...tr.querySelectorAll('td')].map((td) => td.textContent),
    })),
  );
}

describe('the dashboard of a fleet across hosts', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const { dir, app, cleanup } = tempApp();
  let hosts: TestHosts;
  let up: Up;
  let browser: Browser;
  let page: Page;

  const check = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error) {
          const rows = page ? JSON.stringify(await hostRows(page).catch(() => [])) : '';
          err.message += `\nhost rows: ${rows}\n${hostsDiagnosis(hosts, up)}`;
        }
        throw err;
      }
    });

  before(async () => {
    hosts = await startTestHosts({ count: 2, cache: true });
    useTestHosts(app, hosts);
    up = await startUp(dir, UP_ARGS);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(await dashboardUrl(up));
  });
  after(async () => {
    await browser?.close();
    await up?.stop();
    await hosts?.stop();
    cleanup();
  });

  check('the hosts panel lists each host serving, with its release and healthy clones', async () => {
    await page.waitForFunction(
      () => document.querySelectorAll('#hosts tbody tr[data-state="serving"]').length === 2,
      undefined,
      { timeout: 20_000 },
    );
    const release = hostsStatus(dir).release.slice(0, 12);
    const rows = await hostRows(page);
    assert.deepEqual(
      rows.map((r) => [r.host, r.cells[1], r.cells[2], r.cells[3], r.cells[4]]),
      hosts.hosts.map((h) => [h.name, h.address, 'serving', release, '2/2']),
    );
    assert.equal(await page.textContent('#host-count'), '2 of 2 serving');
    assert.equal(await page.locator('#hosts-section').isVisible(), true);
    assert.equal(await page.textContent('#clone-count'), '4 of 4 wanted', 'every host counts');
  });

  check(
    'clones on other hosts show the RSS their host agent measured; clones status --json carries it',
    async () => {
      await page.waitForFunction(
        () => {
          const cells = [...document.querySelectorAll('#clones tbody tr td.rss')];
          return cells.length === 4 && cells.every((c) => /MiB|GiB/.test(c.textContent ?? ''));
        },
        undefined,
        { timeout: 20_000 },
      );
      for (const c of hostsStatus(dir).clones as {
        id: string;
        usage?: { rss: number; cpuSeconds: number };
      }[]) {
        assert.ok(
          (c.usage?.rss ?? 0) > 10 * 2 ** 20,
          `${c.id}: RSS from its host, got ${JSON.stringify(c.usage)}`,
        );
        assert.ok((c.usage?.cpuSeconds ?? -1) >= 0);
      }
    },
  );

  check('a host whose link goes down shows unreachable, and serving again once it is back', async () => {
    await hosts.linkDown('h2');
    try {
      await page.waitForSelector('#hosts tbody tr[data-host="h2"][data-state="unreachable"]', {
        timeout: 15_000,
      });
      assert.equal(await page.textContent('#host-count'), '1 of 2 serving');
      assert.equal(
        await page.getAttribute('#hosts tbody tr[data-host="h1"]', 'data-state'),
        'serving',
        'the other host is not affected',
      );
    } finally {
      await hosts.linkUp('h2');
    }
    await page.waitForSelector('#hosts tbody tr[data-host="h2"][data-state="serving"]', { timeout: 30_000 });
    assert.equal(await page.textContent('#host-count'), '2 of 2 serving');
  });
});
