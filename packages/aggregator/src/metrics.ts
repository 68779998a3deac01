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
    unrouted: new Counter({ name: 'tributary_aggregator_unrouted_events_total', help: 'Events no route matched', registers: r }),
    committedOffset: new Gauge({
      name: 'tributary_aggregator_egress_committed_offset',
      help: 'Last committed log offset (embedded log)',
      registers: r,
    }),
  };
}

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;
