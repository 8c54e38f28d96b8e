import type { ServerResponse } from 'node:http';
import { badTargetSpec } from '../errors.ts';
import { followLogs, readLogLines } from './log-reader.ts';

/** What `GET /logs` asks for, on the fleet's API and on a host agent's. */
export interface LogsQuery {
  /** One clone's id, or every clone. */
  clone: string | undefined;
  /** Last lines per clone (0 with `follow`: only new lines). */
  lines: number;
  /** Leave out lines stamped before this (ms since the epoch). */
  since: number | undefined;
  follow: boolean;
}

/** A line every this often on a quiet followed stream, so that a reader can tell a dead link from silence. */
export const LOGS_HEARTBEAT_MS = 10_000;

/**
 * `GET /logs?clone=&lines=&since=&follow=1`, validated: CLONES_BALANCER_BAD_SPEC (400) names a bad field.
 *
 * @example
 *   logsQuery(new URLSearchParams('lines=20&since=1764620000000&follow=1'));
 */
export function logsQuery(q: URLSearchParams): LogsQuery {
  const lines = q.get('lines') === null ? 100 : Number(q.get('lines'));
  if (!Number.isInteger(lines) || lines < 0 || lines > 10_000)
    throw badTargetSpec('lines', 'must be a whole number 0-10000');
  const sinceText = q.get('since');
  const since = sinceText === null ? undefined : Number(sinceText);
  if (since !== undefined && !(Number.isFinite(since) && since >= 0))
    throw badTargetSpec('since', 'must be a time in ms since the epoch');
  const follow = q.get('follow') === '1' || q.get('follow') === 'true';
  return { clone: q.get('clone') || undefined, lines, since, follow };
}

/**
 * Answers `GET /logs` from the clones' log files in `dir` (rotated files included): `<clone> <line>` per
 * line, the last `lines` of each clone (`since` applied), then with `follow` every new line as it is
 * written, for the clones `live()` names at each poll (so clones that start later are followed too), until
 * the client goes away. A followed stream sends an empty line every LOGS_HEARTBEAT_MS when quiet.
 *
 * @example
 *   await serveLogs(res, logsQuery(url.searchParams), paths.logs, () => supervisor.list().map((c) => c.id));
 */
export async function serveLogs(
  res: ServerResponse,
  q: LogsQuery,
  dir: string,
  live: () => string[],
): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  const ids = () => (q.clone ? [q.clone] : live());
  const text = ids()
    .flatMap((id) =>
      readLogLines(dir, id, { lines: q.lines, since: q.since }).map((l) => `${id} ${l.text}\n`),
    )
    .join('');
  if (!q.follow) {
    res.end(text);
    return;
  }
  res.write(text);
  const stop = new AbortController();
  res.once('close', () => stop.abort());
  let wrote = Date.now();
  const heartbeat = setInterval(() => {
    if (Date.now() - wrote >= LOGS_HEARTBEAT_MS) res.write('\n');
  }, LOGS_HEARTBEAT_MS / 2);
  try {
    await followLogs(
      dir,
      ids,
      (l) => {
        wrote = Date.now();
        res.write(`${l.clone} ${l.text}\n`);
      },
      stop.signal,
    );
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
