import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `01/Dec/2026:23:01:07 +0000`: the Common Log Format's time, in UTC. */
export function clfTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** A quoted field of the Combined Log Format: `"` and `\` escaped, control characters dropped, `-` if empty. */
function quoted(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(', ') : (value ?? '');
  if (text === '') return '"-"';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, '')}"`;
}

/**
 * The balancer's access log (off unless `accessLog` names a file): one line per proxied request in the
 * Combined Log Format that nginx and Apache write (so goaccess, awstalk and friends read it), followed by the
 * clone that answered and the time taken in ms:
 * `203.0.113.7 - - [01/Dec/2026:23:01:07 +0000] "GET /cart HTTP/1.1" 200 512 "-" "curl/8.1" c2 3.1`.
 * Writes are buffered by a stream; the file is opened 0600 in append mode, so the fleet's copy-and-truncate
 * rotation works under it.
 *
 * @example
 *   const log = new AccessLog('.clones/logs/balancer-access.log');
 *   log.request(req, '203.0.113.7', 200, 512, 'c2', 3.1);
 *   await log.close();
 */
export class AccessLog {
  readonly #out: WriteStream;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#out = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#out.on('error', () => {});
  }

  request(
    req: IncomingMessage,
    clientIp: string,
    status: number,
    bytes: number | undefined,
    clone: string | undefined,
    ms: number,
  ): void {
    const line = `${clientIp || '-'} - - [${clfTime(Date.now())}] ${quoted(`${req.method} ${req.url} HTTP/${req.httpVersion}`)} ${status} ${bytes ?? '-'} ${quoted(req.headers.referer)} ${quoted(req.headers['user-agent'])} ${clone ?? '-'} ${ms.toFixed(1)}\n`;
    this.#out.write(line);
  }

  /** A line formatted elsewhere (the HAProxy engine's log-format, the same fields). */
  raw(line: string): void {
    this.#out.write(`${line}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#out.end(() => resolve()));
  }
}
