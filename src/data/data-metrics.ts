/** Counters of one `database()`; `db.metrics()` returns a copy. All are totals since start. */
export interface DataMetrics {
  /** Reads served by each server, by name (`primary 127.0.0.1:5432`, `replica 127.0.0.1:5433`, `sqlite ...`). */
  reads: Record<string, number>;
  /** Reads that went to the primary because no replica in rotation had replayed the reader's position. */
  readsPrimaryForPosition: number;
  /** Reads that went to the primary because no replica was in rotation at all. */
  readsPrimaryNoReplica: number;
  /** Reads retried elsewhere after a replica's connection failed. */
  readRetries: number;
  writes: number;
  writeErrors: number;
  cacheHits: number;
  cacheMisses: number;
  /** Misses this clone filled while holding the cross-clone lease (each costs one loader run). */
  cacheFills: number;
  /** Misses that waited for another caller's fill (in this clone or, through the lease, in another). */
  cacheWaits: number;
  /** Fills refused because a write reached the key after the fill began (the stale-set race, averted). */
  cacheStaleFills: number;
  /** Cache calls that failed (the read then went to the database). */
  cacheErrors: number;
  /**
   * Keys given up on after a failed cache update left them possibly stale, because more than 10,000 were
   * waiting to be deleted again: those entries live until their TTL.
   */
  cacheUnsyncedDropped: number;
  /** Times a replica left and rejoined rotation. */
  replicaLeaves: number;
  replicaJoins: number;
}

export function newMetrics(): DataMetrics {
  return {
    reads: {},
    readsPrimaryForPosition: 0,
    readsPrimaryNoReplica: 0,
    readRetries: 0,
    writes: 0,
    writeErrors: 0,
    cacheHits: 0,
    cacheMisses: 0,
    cacheFills: 0,
    cacheWaits: 0,
    cacheStaleFills: 0,
    cacheErrors: 0,
    cacheUnsyncedDropped: 0,
    replicaLeaves: 0,
    replicaJoins: 0,
  };
}
