import { PrometheusText } from '../prometheus-text.ts';
import type { StoreStats } from './stores/runtime-store.ts';

/**
 * The session metrics of one engine in the Prometheus text format: store latency per operation, store errors
 * by code, CAS retries, sessions created and destroyed. Sealed cookies have no store: every series is empty.
 *
 * @example
 *   res.end(sessionPrometheus(store.stats));
 */
export function sessionPrometheus(stats: StoreStats | undefined): string {
  const page = new PrometheusText();
  page.histogram(
    'clones_session_store_duration_seconds',
    'Time a session store call took, by operation.',
    [...(stats?.latency ?? [])].map(([op, h]) => [{ op }, h] as const),
  );
  page.counter(
    'clones_session_store_errors_total',
    'Session store calls that failed, by error code.',
    [...(stats?.errors ?? [])].map(([code, n]) => [{ code }, n] as const),
  );
  page.counter(
    'clones_session_cas_retries_total',
    'Session updates that lost a compare-and-set to a concurrent writer and read again.',
    [[{}, stats?.casRetries ?? 0]],
  );
  page.counter('clones_session_created_total', 'Sessions created in the store.', [[{}, stats?.created ?? 0]]);
  page.counter(
    'clones_session_destroyed_total',
    'Sessions destroyed in the store (logout, regenerate, destroyByUser).',
    [[{}, stats?.destroyed ?? 0]],
  );
  return page.toString();
}
