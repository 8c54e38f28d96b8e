import { PrometheusText } from '../prometheus-text.ts';
import type { DataMetrics } from './data-metrics.ts';
import type { ReplicaStatus } from './replica-pool.ts';

/**
 * The data layer's metrics in the Prometheus text format: replica lag in bytes and rotation, reads per
 * server, reads that fell back to the primary, cache hits and misses (their ratio is the hit ratio), writes.
 * Rendered from counters the data layer keeps anyway: asking for them adds no cost to a read.
 *
 * @example
 *   res.end(dataPrometheus(db.metrics(), db.status().replicas));
 */
export function dataPrometheus(m: DataMetrics, replicas: readonly ReplicaStatus[]): string {
  const one = (n: number) => [[{}, n] as const];
  return new PrometheusText()
    .gauge(
      'clones_data_replica_lag_bytes',
      'WAL bytes each replica is behind the primary, as of the last position poll.',
      replicas.map((r) => [{ replica: r.name }, r.lagBytes] as const),
    )
    .gauge(
      'clones_data_replica_in_rotation',
      '1 when the replica takes reads (up and within maxLagBytes).',
      replicas.map((r) => [{ replica: r.name }, r.inRotation ? 1 : 0] as const),
    )
    .counter(
      'clones_data_reads_total',
      'Reads served, by server.',
      Object.entries(m.reads).map(([server, n]) => [{ server }, n] as const),
    )
    .counter(
      'clones_data_primary_reads_total',
      'Reads sent to the primary although replicas are configured.',
      [
        [{ reason: 'position' }, m.readsPrimaryForPosition],
        [{ reason: 'no_replica' }, m.readsPrimaryNoReplica],
      ],
    )
    .counter(
      'clones_data_read_retries_total',
      'Reads retried elsewhere after a replica failed.',
      one(m.readRetries),
    )
    .counter('clones_data_writes_total', 'Writes and transactions committed on the primary.', one(m.writes))
    .counter('clones_data_write_errors_total', 'Writes and transactions that failed.', one(m.writeErrors))
    .counter('clones_data_cache_hits_total', 'Cached reads answered by the cache.', one(m.cacheHits))
    .counter('clones_data_cache_misses_total', 'Cached reads the cache could not answer.', one(m.cacheMisses))
    .counter('clones_data_cache_errors_total', 'Cache calls that failed.', one(m.cacheErrors))
    .toString();
}
