/**
 * Every metric the aggregator exports, in one place (Prometheus naming,
 * bounded labels: sink names and outcomes, never tags or chunk ids).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createAggregatorMetrics(registry: Registry) {
  const r = [registry];
  return {
    eventsIn: new Counter({
      name: 'tributary_aggregator_input_events_total',
      help: 'Events written to the durable log',
      labelNames: ['input'],
      registers: r,
    }),
    chunksIn: new Counter({
      name: 'tributary_aggregator_input_chunks_total',
      help: 'Chunks received, by dedupe outcome',
      labelNames: ['outcome'],
      registers: r,
    }),
    inputErrors: new Counter({
      name: 'tributary_aggregator_input_errors_total',
      help: 'Requests refused',
      labelNames: ['input', 'code'],
      registers: r,
    }),
    dedupeUnavailable: new Counter({
      name: 'tributary_aggregator_dedupe_unavailable_total',
      help: 'Redis errors (fail_open lets chunks through)',
      registers: r,
    }),
    dedupeStateLost: new Counter({
      name: 'tributary_aggregator_dedupe_state_lost_total',
      help: 'Times Redis was seen to have lost its dedupe marks (epoch key gone or changed)',
      registers: r,
    }),
    dedupeRebuilding: new Gauge({
      name: 'tributary_aggregator_dedupe_rebuilding',
      help: '1 while the Redis dedupe marks are being rebuilt from the logs (not trusted)',
      registers: r,
    }),
    dedupeRebuildFailures: new Counter({
      name: 'tributary_aggregator_dedupe_rebuild_failures_total',
      help: 'Failed attempts to re-mark the logged chunks in Redis (retried with backoff)',
      registers: r,
    }),
    dedupeUnverified: new Counter({
      name: 'tributary_aggregator_dedupe_unverified_chunks_total',
      help: 'fail_open: chunks written while the Redis marks were being rebuilt (possible duplicates)',
      registers: r,
    }),
    dedupeDuplicates: new Counter({
      name: 'tributary_aggregator_dedupe_duplicates_total',
      help: "Chunks of this node's log found written by another node too, when re-marking after Redis lost its marks",
      registers: r,
    }),
    dedupeStaleClaims: new Counter({
      name: 'tributary_aggregator_dedupe_stale_claims_total',
      help: 'Claims of a restarted node (dead incarnation) taken over without waiting for the claim TTL',
      registers: r,
    }),
    logAppendSeconds: new Histogram({
      name: 'tributary_aggregator_log_append_seconds',
      help: 'Durable log append latency per batch',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: r,
    }),
    eventsOut: new Counter({
      name: 'tributary_aggregator_sink_events_total',
      help: 'Events confirmed by a sink',
      labelNames: ['sink'],
      registers: r,
    }),
    sinkFailures: new Counter({
      name: 'tributary_aggregator_sink_failures_total',
      help: 'Sink batch attempts that failed',
      labelNames: ['sink'],
      registers: r,
    }),
    sinkCalls: new Counter({
      name: 'tributary_aggregator_sink_calls_total',
      help: 'API calls made by a sink',
      labelNames: ['sink'],
      registers: r,
    }),
    failedRecords: new Counter({
      name: 'tributary_aggregator_sink_failed_records_total',
      help: 'Records a sink call reported as failed (resent)',
      labelNames: ['sink'],
      registers: r,
    }),
    deadLetters: new Counter({
      name: 'tributary_aggregator_dead_letter_events_total',
      help: 'Events sent to a dead-letter destination',
      labelNames: ['sink'],
      registers: r,
    }),
    egressDeadLetters: new Counter({
      name: 'tributary_egress_dead_letter_events_total',
      help: 'Events egress could not encode and sent to dead letters, by reason: shape, depth, malformed, encoder (once per event, whatever the sinks)',
      labelNames: ['reason'],
      registers: r,
    }),
    egressErrors: new Counter({
      name: 'tributary_aggregator_egress_errors_total',
      help: 'Egress poll, commit and encoder failures (each retried or dead-lettered)',
      labelNames: ['stage'],
      registers: r,
    }),
    objectsOut: new Counter({
      name: 'tributary_aggregator_sink_objects_total',
      help: 'Objects an object sink (file, S3) wrote',
      labelNames: ['sink'],
      registers: r,
    }),
    logBacklogBytes: new Gauge({
      name: 'tributary_aggregator_log_backlog_bytes',
      help: 'Bytes in the embedded log that egress has not committed yet (as ingest last saw it)',
      registers: r,
    }),
    backlogWaits: new Counter({
      name: 'tributary_aggregator_log_backlog_waits_total',
      help: 'Ingest batches that waited because egress was log.max_backlog_bytes behind',
      registers: r,
    }),
    unrouted: new Counter({ name: 'tributary_aggregator_unrouted_events_total', help: 'Events no route matched', registers: r }),
    committedOffset: new Gauge({
      name: 'tributary_aggregator_egress_committed_offset',
      help: 'Last committed log offset (embedded log)',
      registers: r,
    }),
  };
}

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;
