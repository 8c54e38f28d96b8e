import { writeSync } from 'node:fs';

/** How log lines are written: `json` (pino's lines) or `human` (one short readable line). */
export type LogFormat = 'json' | 'human';

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'part', 'err', 'v']);
/** The same message (level, text, code) is shown once per this window; repeats are counted. */
const REPEAT_WINDOW = 10_000;

/**
 * Where the project's logger writes: JSON lines on stderr (what machines and files want), or on a terminal
 * one human line per record: `12:04:31 warn  balancer  no healthy target  code=CLONES_BALANCER_NO_TARGET`,
 * the error's message without its stack (`CLONES_DEBUG=1` shows it), and a message repeated within 10 s
 * shown once with a count. The default is human on a terminal unless CLONES_LOG_FORMAT=json; `clones up
 * --log-format` sets it.
 *
 * @example
 *   const out = new LogOutput(2);
 *   out.format = 'json';
 *   pino({}, out);
 */
export class LogOutput {
  format: LogFormat;
  readonly #fd: number;
  readonly #seen = new Map<string, { at: number; repeats: number }>();

  constructor(fd: number, env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stderr.isTTY)) {
    this.#fd = fd;
    this.format = env.CLONES_LOG_FORMAT === 'json' || !isTTY || env.TERM === 'dumb' ? 'json' : 'human';
  }

  write(line: string): boolean {
    const text = this.format === 'json' ? line : this.human(line, Date.now());
    if (text) writeSync(this.#fd, text);
    return true;
  }

  /** The human line of one pino JSON line ('' when it is a repeat shown already). */
  human(line: string, now: number): string {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return line;
    }
    const level = LEVELS[Number(record.level)] ?? String(record.level);
    const err = record.err as { message?: string; code?: string; stack?: string } | undefined;
    const key = `${level}|${String(record.msg)}|${String(record.code ?? err?.code ?? '')}`;
    const seen = this.#seen.get(key);
    if (seen && now - seen.at < REPEAT_WINDOW) {
      seen.repeats++;
      return '';
    }
    this.#seen.set(key, { at: now, repeats: 0 });
    if (this.#seen.size > 500) this.#seen.clear();
    const time = new Date(typeof record.time === 'number' ? record.time : now).toTimeString().slice(0, 8);
    const fields = Object.entries(record)
      .filter(([k]) => !HIDDEN.has(k))
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    if (err?.message) fields.unshift(err.code ? `${err.code}: ${err.message}` : err.message);
    if (seen?.repeats) fields.push(`(${seen.repeats} more like this before)`);
    const part = typeof record.part === 'string' ? `${record.part}  ` : '';
    const stack = process.env.CLONES_DEBUG && err?.stack ? `\n${err.stack}` : '';
    return `${time} ${level.padEnd(5)} ${part}${String(record.msg ?? '')}${fields.length ? `  ${fields.join('  ')}` : ''}${stack}\n`;
  }
}
