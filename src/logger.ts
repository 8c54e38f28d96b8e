import pino from 'pino';
import { LogOutput } from './log-format.ts';

/**
 * Where the logger writes; its `format` is `human` on a terminal, else `json` (`clones up --log-format`).
 *
 * @example
 *   logOutput.format = 'json';
 */
export const logOutput = new LogOutput(2);

/**
 * The project's one logger. Level from CLONES_LOG_LEVEL (default 'info'); on stderr so a clone's stdout stays
 * the app's own: JSON lines, or human lines on a terminal (see LogOutput).
 *
 * @example
 *   logger.child({ part: 'session' }).warn({ code }, 'store unavailable');
 */
export const logger = pino(
  { level: process.env.CLONES_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  logOutput,
);
