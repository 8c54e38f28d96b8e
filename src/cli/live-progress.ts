import { setTimeout as sleep } from 'node:timers/promises';
import { actionInterrupted } from '../errors.ts';
import type { FleetClient, FleetEvent, FleetStatus } from '../fleet/index.ts';
import { applyEvent, applyStatus, type DeployView, newView, renderTable } from './deploy-table.ts';
import { eventLine, printEvent } from './event-line.ts';

/** Where progress goes: process.stdout, or anything shaped like it (tests). */
export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  rows?: number;
  columns?: number;
}

/** Progress of a deploy, rollback or scale: `event` for each fleet event, `close` once it ended. */
export interface Progress {
  event(event: FleetEvent): void;
  /** Resolves once the last state is on screen. */
  close(): Promise<void>;
}

export interface ProgressOptions {
  json: boolean;
  action: string;
  out?: ProgressOutput;
  /** Fetches the fleet status (health, in-flight, weights) for the live table; polled every second. */
  poll?: () => Promise<unknown>;
  env?: NodeJS.ProcessEnv;
}

/**
 * Picks the progress output: NDJSON with `--json`; a live table redrawn in place when `out` is a terminal
 * (and TERM is not "dumb"); else one line per event, which is what pipes, files and CI logs want.
 *
 * @example
 *   const progress = createProgress({ json: false, action: 'deploy', poll: () => client.get('/status') });
 *   try { await client.stream('/deploy', body, (e) => progress.event(e)); } finally { await progress.close(); }
 */
export function createProgress(options: ProgressOptions): Progress {
  const out = options.out ?? process.stdout;
  const env = options.env ?? process.env;
  if (!options.json && out.isTTY && env.TERM !== 'dumb')
    return new LiveTable(out, options.action, options.poll);
  return { event: (e) => printEvent(e, options.json), close: async () => {} };
}

/**
 * Runs one fleet action (`deploy`, `rollback`, `scale`: POST /<action>, answered as a stream of events) with
 * its progress shown, `first` (e.g. the release just built) before the fleet's own events.
 *
 * @example
 *   await runWithProgress(connectFleet(paths), 'scale', { clones: 5 }, { json: false });
 */
export async function runWithProgress(
  client: FleetClient,
  action: string,
  body: object,
  options: { json: boolean; first?: FleetEvent; method?: string; path?: string },
): Promise<void> {
  const progress = createProgress({ json: options.json, action, poll: () => client.get('/status') });
  // Ctrl-C drops the request, which makes the fleet roll a deploy back; the command then waits for that to
  // end and says what the fleet runs (a second Ctrl-C leaves at once).
  const cancel = new AbortController();
  const interrupt = () => cancel.abort(new Error('interrupted'));
  process.once('SIGINT', interrupt);
  let from: string | undefined;
  try {
    if (options.first) progress.event(options.first);
    await client.stream(
      options.path ?? `/${action}`,
      body,
      (event) => {
        if (event.type === 'deploy') from = event.from;
        progress.event(event);
      },
      options.method,
      cancel.signal,
    );
  } catch (err) {
    if (!cancel.signal.aborted) throw err;
    await progress.close();
    throw actionInterrupted(action, await afterCancel(client, from));
  } finally {
    process.removeListener('SIGINT', interrupt);
    await progress.close();
  }
}

/** How long a cancelled command waits for the fleet to finish rolling back before it says so and leaves. */
const CANCEL_WAIT_MS = 120_000;

/** Waits until the fleet holds no deploy lock any more, then says what it runs. */
async function afterCancel(client: FleetClient, from: string | undefined): Promise<string> {
  const short = (r: string) => r.slice(0, 12);
  const back = from ? `rolling back to ${short(from)}` : 'finishing';
  process.stderr.write(`cancelling: the fleet is ${back} (Ctrl-C again to leave it to that)\n`);
  const leave = new Promise<'left'>((resolve) => process.once('SIGINT', () => resolve('left')));
  const deadline = Date.now() + CANCEL_WAIT_MS;
  for (;;) {
    const s = (await Promise.race([client.get('/status').catch(() => undefined), leave])) as
      | FleetStatus
      | 'left'
      | undefined;
    if (s === 'left') return `the fleet goes on ${back} by itself; see clones status`;
    if (s && s.lock === null) {
      const serving = s.clones.filter((c) => c.release === s.release && c.state === 'serving').length;
      return `the fleet runs ${short(s.release)} (${serving} of ${s.clonesWanted} clones serving)`;
    }
    if (Date.now() > deadline) return `the fleet is still ${back}; see clones status`;
    if ((await Promise.race([sleep(250), leave])) === 'left')
      return `the fleet goes on ${back} by itself; see clones status`;
  }
}

const ESC = '\u001b[';
const REDRAW_MS = 80;
const POLL_MS = 1000;

/**
 * The live per-clone table: redrawn in place (cursor up, clear lines) on every event and every second.
 * Lines that are history (release built, canary steps, rollback reasons, done) are printed above it and
 * stay on screen.
 *
 * @example
 *   const table = new LiveTable(process.stdout, 'deploy', () => client.get('/status'));
 */
export class LiveTable implements Progress {
  readonly #out: ProgressOutput;
  readonly #view: DeployView;
  readonly #poll: (() => Promise<unknown>) | undefined;
  #drawn = 0;
  #scheduled: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #polling = false;
  #closed = false;

  constructor(out: ProgressOutput, action: string, poll?: () => Promise<unknown>) {
    this.#out = out;
    this.#view = newView(action, Date.now());
    this.#poll = poll;
    this.#ticker = setInterval(() => this.#tick(), POLL_MS);
    this.#ticker.unref();
    this.#tick();
  }

  event(event: FleetEvent): void {
    if (this.#closed) return;
    applyEvent(this.#view, event);
    const line = event.type === 'clone' || event.type === 'desired' ? undefined : eventLine(event);
    if (line !== undefined) this.log(line);
    else this.#schedule();
  }

  /** Prints a line above the table, which is then redrawn below it. */
  log(line: string): void {
    this.#write(`${this.#erase()}${line}\n${this.#render()}`);
  }

  /** One last status poll (at most 1 s), so the table left on screen shows how the fleet ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    clearTimeout(this.#scheduled);
    if (this.#poll) {
      const sentAt = Date.now();
      const status = await Promise.race([
        this.#poll().catch(() => undefined),
        sleep(POLL_MS, undefined, { ref: false }),
      ]);
      if (status) applyStatus(this.#view, status as FleetStatus, sentAt);
    }
    this.#write(`${this.#erase()}${this.#render()}`);
  }

  #tick(): void {
    if (this.#closed) return;
    this.#schedule();
    if (!this.#poll || this.#polling) return;
    this.#polling = true;
    const sentAt = Date.now();
    this.#poll()
      .then((status) => {
        if (!this.#closed) applyStatus(this.#view, status as FleetStatus, sentAt);
      })
      .catch(() => {
        // The events carry on without health; the stream reports real failures.
      })
      .finally(() => {
        this.#polling = false;
        this.#schedule();
      });
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = setTimeout(() => {
      this.#scheduled = undefined;
      if (!this.#closed) this.#write(`${this.#erase()}${this.#render()}`);
    }, REDRAW_MS);
    this.#scheduled.unref();
  }

  /** Back to the first line of the table and clear from there down. */
  #erase(): string {
    const up = this.#drawn;
    this.#drawn = 0;
    return up > 0 ? `\r${ESC}${up}A${ESC}J` : '';
  }

  #render(): string {
    const rows = this.#out.rows && this.#out.rows > 3 ? this.#out.rows - 1 : undefined;
    const width = this.#out.columns && this.#out.columns > 10 ? this.#out.columns - 1 : undefined;
    const lines = renderTable(this.#view, Date.now(), rows).map((l) => (width ? l.slice(0, width) : l));
    this.#drawn = lines.length;
    return lines.map((l) => `${ESC}2K${l}\n`).join('');
  }

  #write(text: string): void {
    this.#out.write(text);
  }
}
