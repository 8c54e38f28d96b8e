import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/**
 * A pino logger at `level` that keeps what it logs: each record parsed, in `records`, for a test to assert
 * what was logged.
 *
 * @example
 *   const { logger, records } = memoryLogger('warn');
 *   assert.ok(records.some((r) => r.code === 'CLONES_TLS_EXPIRED'));
 */
export function memoryLogger(level = 'warn'): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) records.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, sink), records };
}
