import { connect } from 'node:net';
import { haproxyFailed } from '../../../errors.ts';

/**
 * One HAProxy runtime API command over a unix socket: the stats socket (`level admin`) of the worker, or the
 * master CLI. HAProxy answers one command per connection and, on the master CLI, only after the client
 * half-closes, so every call opens a connection, writes the command, ends its side and reads to the end.
 * A command that does not answer within `timeoutMs` rejects with `CLONES_HAPROXY_FAILED`, so nothing hangs
 * when haproxy is gone.
 *
 * @example
 *   const stat = await runtimeCommand('/var/lib/clones/haproxy/admin.sock', 'show stat');
 */
export function runtimeCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  if (/[\r\n]/.test(command.replace(/<<\n[\s\S]*\n$/, '')))
    return Promise.reject(haproxyFailed('runtime API', 'a command must be one line'));
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        haproxyFailed(`runtime API "${command.split(' ', 3).join(' ')}"`, `no answer in ${timeoutMs} ms`),
      );
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(haproxyFailed('runtime API', err.message));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString());
    });
    socket.end(command.endsWith('\n') ? command : `${command}\n`);
  });
}

/**
 * A read-only command (`show stat`, `show info`), tried again for up to a second while the socket refuses or
 * drops the connection: right after a reload the new worker's stats socket can lag the old one's exit.
 *
 * @example
 *   const rows = parseStat(await runtimeQuery(files.stats, 'show stat', 3000));
 */
export async function runtimeQuery(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runtimeCommand(socketPath, command, timeoutMs);
    } catch (err) {
      if (attempt >= 20 || /no answer in/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Runs a command whose success HAProxy reports only in words: an answer that is not empty and does not look
 * like success ("Success!", "Done.", "New ...") is an error.
 *
 * @example
 *   await runtimeChange(sock, 'set server g_blue/c1 state maint');
 */
export async function runtimeChange(socketPath: string, command: string): Promise<void> {
  const answer = (await runtimeCommand(socketPath, command)).trim();
  if (answer === '' || /^(Success|Done|New |Transaction|Committing|Entry)/i.test(answer)) return;
  throw haproxyFailed(`"${command.split('\n')[0]}"`, answer.split('\n')[0] ?? answer);
}

/** One row of `show stat` (CSV), by column name. */
export type StatRow = Record<string, string>;

/**
 * Parses `show stat` CSV: a `# pxname,svname,...` header line, then one row per proxy, server and backend.
 *
 * @example
 *   const rows = parseStat(await runtimeCommand(sock, 'show stat'));
 *   rows.filter((r) => r.svname === 'c1').map((r) => r.status); // ['UP']
 */
export function parseStat(csv: string): StatRow[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (header === undefined || !header.startsWith('# ')) return [];
  const names = header.slice(2).split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: StatRow = {};
    names.forEach((name, i) => {
      if (name !== '') row[name] = cells[i] ?? '';
    });
    return row;
  });
}
