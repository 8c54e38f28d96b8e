import type { ErrorCode } from './codes.ts';

/**
 * Every error the project throws. Each carries a stable `code` (listed in docs/errors.md) and the HTTP status
 * an adapter answers with when the error ends a request.
 *
 * @example
 *   if (err instanceof ClonesError && err.code === 'CLONES_SESSION_STORE_UNAVAILABLE') retryLater();
 */
export class ClonesError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClonesError';
    this.code = code;
    this.status = options.status ?? 500;
  }

  /** The same status under the name Fastify and http-errors read. */
  get statusCode(): number {
    return this.status;
  }

  /** Frameworks show the message of an error that says it may be exposed. */
  get expose(): boolean {
    return true;
  }

  /** The JSON body every HTTP error answer carries: `{ "error": { "code", "message" } }`. */
  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/**
 * Something that is not a ClonesError reached an HTTP edge (an adapter, an admin API): answered as 500
 * `CLONES_INTERNAL` with `message` (the details stay in `cause`, for the log). The one place that wraps.
 *
 * @example
 *   const e = err instanceof ClonesError ? err : internalError(err);
 */
export const internalError = (cause: unknown, message = 'internal error'): ClonesError =>
  new ClonesError('CLONES_INTERNAL', message, { cause });

/**
 * The error another clones process answered with (`{ "error": { "code", "message" } }` from the fleet API or
 * a host agent), raised again here. That process may run another version, so its code is kept as sent even
 * when this version does not list it: the one place a code is not checked at compile time.
 *
 * @example
 *   reject(errorFromBody(parsed.error.code, parsed.error.message, { status: res.statusCode ?? 500 }));
 */
export const errorFromBody = (
  code: string,
  message: string,
  options: { status?: number } = {},
): ClonesError => new ClonesError(code as ErrorCode, message, options);

/**
 * Hides the password in a URL before it is shown in a message or a log line.
 *
 * @example
 *   redactUrl('redis://app:s3cret@cache:6379'); // 'redis://app:***@cache:6379'
 */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}
