// Shared by the browser tests: Debian's chromium under playwright-core (Playwright's own download is not
// possible here), and the dashboard login URL `clones up` prints.
import { type Browser, chromium } from 'playwright-core';
import type { Up } from '../fleet/fleet-harness.ts';

const CHROMIUM = '/usr/bin/chromium';

/** Headless chromium, with nothing that reaches the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The one-time login URL `clones up` printed (`dashboard: http://...`). */
export async function dashboardUrl(u: Up): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /dashboard: (http\S+)/.exec(u.output());
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`no dashboard URL in:\n${u.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
