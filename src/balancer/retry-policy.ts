import type { RequestFacts } from './request-hygiene.ts';
import type { RetryBudget } from './retry-budget.ts';

/** Errors that mean the request never reached the clone: safe to send elsewhere whatever the method. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UPSTREAM_CONNECT_TIMEOUT',
]);

/** Errors that, on a socket that already carried a response, mean the keep-alive race: never delivered. */
const RESET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UPSTREAM_CLOSED']);

const TIMEOUTS = new Set(['UPSTREAM_HEADERS_TIMEOUT', 'UPSTREAM_BODY_TIMEOUT']);

/** The upstream client refusing the request itself: nothing reached the clone, and it is not its fault. */
const REFUSED_BY_CLIENT = new Set(['UPSTREAM_BAD_REQUEST']);

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * What a failed attempt means for a retry: `refused` (our HTTP client would not send it: the client's fault,
 * never the clone's), `not-delivered` (it never reached the clone), `timeout` (the clone did not answer in
 * time) or `failed` (anything else; the clone may have acted on it).
 */
export type UpstreamFailure = 'refused' | 'not-delivered' | 'timeout' | 'failed';

/**
 * Sorts an upstream error code; `reused` says the attempt went out on a socket that had already carried a
 * response, where a reset is the keep-alive race and the request was never delivered.
 *
 * @example
 *   classifyFailure('ECONNREFUSED', false); // 'not-delivered'
 *   classifyFailure('ECONNRESET', true); // 'not-delivered'
 *   classifyFailure('ECONNRESET', false); // 'failed'
 */
export function classifyFailure(code: string, reused: boolean): UpstreamFailure {
  if (REFUSED_BY_CLIENT.has(code)) return 'refused';
  if (CONNECT_ERRORS.has(code) || (reused && RESET_ERRORS.has(code))) return 'not-delivered';
  if (TIMEOUTS.has(code)) return 'timeout';
  return 'failed';
}

/**
 * RFC 9110 §9.2.2 idempotent methods, or a request that carries an Idempotency-Key.
 *
 * @example
 *   mayRepeat('PUT', facts); // true
 */
export function mayRepeat(method: string | undefined, facts: RequestFacts): boolean {
  return IDEMPOTENT.has(method ?? '') || facts.idempotencyKey;
}

/** One failed attempt of a request, as the retry decision sees it. */
export interface FailedAttempt {
  readonly failure: UpstreamFailure;
  /** Attempts made so far, this one included. */
  readonly attempts: number;
  /** No part of the answer has reached the client and it is still there. */
  readonly clientWaiting: boolean;
  /** The request body (if any) can be sent again. */
  readonly replayable: boolean;
  readonly method: string | undefined;
  readonly facts: RequestFacts;
  /** This request already holds a place in the retry budget. */
  readonly retried: boolean;
}

/**
 * Whether to try the request again (elsewhere): within `retries.attempts`, while the client waits for an
 * answer and the body can be replayed; a request that never arrived always may, a delivered one only when
 * repeating it is safe, and only within the retry budget (a request that never reached a clone adds no load
 * anywhere by going elsewhere: only repeats of delivered requests spend the budget). Takes a place in the
 * budget when it says yes for a delivered request that held none.
 *
 * @example
 *   if (canRetry(attempt, options.retries.attempts, budget, active)) tryAgain();
 */
export function canRetry(a: FailedAttempt, maxRetries: number, budget: RetryBudget, active: number): boolean {
  const neverArrived = a.failure === 'not-delivered';
  return (
    a.attempts <= maxRetries &&
    a.clientWaiting &&
    a.replayable &&
    (neverArrived || mayRepeat(a.method, a.facts)) &&
    (neverArrived || a.retried || budget.tryAcquire(active))
  );
}

/**
 * The retry metric's label for a failure that is retried.
 *
 * @example
 *   metrics.retry(retryReason('timeout')); // 'timeout'
 */
export function retryReason(failure: UpstreamFailure): 'not-delivered' | 'timeout' | 'idempotent' {
  return failure === 'not-delivered' ? 'not-delivered' : failure === 'timeout' ? 'timeout' : 'idempotent';
}
