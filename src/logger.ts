import pino from 'pino';

/**
 * The project's one logger. Level from CLONES_LOG_LEVEL (default 'info'); JSON lines on stderr so a clone's
 * stdout stays the app's own.
 *
 * @example
 *   logger.child({ part: 'session' }).warn({ code }, 'store unavailable');
 */
export const logger = pino(
  { level: process.env.CLONES_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination(2),
);
