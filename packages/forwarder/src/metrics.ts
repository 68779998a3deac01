import type { ChunkBuffer } from '@tributary/buffer';
/**
 * Every metric the forwarder exports, in one place. Names follow Prometheus
 * conventions; labels are bounded (input name, node address — never a tag).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createForwarderMetrics(registry: Registry) {
  const r = [registry];
  return {
    eventsIn: new Counter({
      name: 'tributary_forwarder_input_events_total',
      help: 'Events accepted into the buffer',
      labelNames: ['input'],
      registers: r,
    }),
    bytesIn: new Counter({
      name: 'tributary_forwarder_input_bytes_total',
      help: 'Entry bytes accepted into the buffer',
      labelNames: ['input'],
      registers: r,
    }),
    inputErrors: new Counter({
      name: 'tributary_forwarder_input_errors_total',
      help: 'Requests refused (bad input, auth, full buffer)',
      labelNames: ['input', 'code'],
      registers: r,
    }),
    eventsOut: new Counter({ name: 'tributary_forwarder_output_events_total', help: 'Events acked by aggregators', registers: r }),
    bytesOut: new Counter({ name: 'tributary_forwarder_output_bytes_total', help: 'Request bytes acked by aggregators', registers: r }),
    chunksOut: new Counter({ name: 'tributary_forwarder_output_chunks_total', help: 'Chunks acked by aggregators', registers: r }),
    retries: new Counter({
      name: 'tributary_forwarder_output_retries_total',
      help: 'Chunk sends that failed and were rescheduled',
      registers: r,
    }),
    deadLetters: new Counter({
      name: 'tributary_forwarder_dead_letter_events_total',
      help: 'Events given up on after max_attempts: written to the dead-letter directory, or dropped when none is set',
      labelNames: ['outcome'],
      registers: r,
    }),
    deadLetterFailures: new Counter({
      name: 'tributary_forwarder_dead_letter_failures_total',
      help: 'Dead-letter writes that failed (the chunk stays buffered and is retried)',
      registers: r,
    }),
    resentChunks: new Counter({
      name: 'tributary_forwarder_input_resent_chunks_total',
      help: 'Chunks (or pieces of a chunk over the chunk limit) received again under an id already acked or stored: acked again, not buffered twice',
      registers: r,
    }),
    bufferIoErrors: new Counter({
      name: 'tributary_forwarder_buffer_io_errors_total',
      help: 'Disk buffer filesystem errors, by step and errno code',
      labelNames: ['op', 'code'],
      registers: r,
    }),
    socketErrors: new Counter({
      name: 'tributary_forwarder_output_socket_errors_total',
      help: 'Errors on connections to aggregators (connect, socket, ack timeout)',
      labelNames: ['node'],
      registers: r,
    }),
    nodeFailures: new Counter({
      name: 'tributary_forwarder_node_failures_total',
      help: 'Times an aggregator was marked down',
      labelNames: ['node'],
      registers: r,
    }),
    connectionRotations: new Counter({
      name: 'tributary_forwarder_connection_rotations_total',
      help: 'Connections retired after max_connection_age_ms',
      registers: r,
    }),
    droppedEvents: new Counter({
      name: 'tributary_forwarder_buffer_dropped_events_total',
      help: 'Events dropped by the drop_oldest overflow policy',
      registers: r,
    }),
    ackLatency: new Histogram({
      name: 'tributary_forwarder_output_ack_seconds',
      help: 'Time from send to ack per chunk',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: r,
    }),
  };
}

export type ForwarderMetrics = ReturnType<typeof createForwarderMetrics>;

/** Gauges read from live state at scrape time. */
export function registerStateGauges(
  registry: Registry,
  buffer: ChunkBuffer,
  nodeHealth: () => Array<{ node: string; healthy: boolean }>,
): void {
  const r = [registry];
  new Gauge({
    name: 'tributary_forwarder_buffer_bytes',
    help: 'Bytes held in the buffer',
    registers: r,
    collect() {
      this.set(buffer.stats().bytes);
    },
  });
  new Gauge({
    name: 'tributary_forwarder_buffer_events',
    help: 'Events held in the buffer',
    registers: r,
    collect() {
      this.set(buffer.stats().events);
    },
  });
  new Gauge({
    name: 'tributary_forwarder_buffer_oldest_age_seconds',
    help: 'Age of the oldest buffered chunk',
    registers: r,
    collect() {
      const oldest = buffer.stats().oldestCreatedAt;
      this.set(oldest === null ? 0 : (Date.now() - oldest) / 1000);
    },
  });
  new Gauge({
    name: 'tributary_forwarder_buffer_refusing',
    help: '1 while the buffer refuses events (a failed fdatasync until restart, or failing writes such as a full disk)',
    registers: r,
    collect() {
      this.set(buffer.problem() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tributary_forwarder_node_up',
    help: '1 when the aggregator node is taking chunks',
    labelNames: ['node'],
    registers: r,
    collect() {
      for (const n of nodeHealth()) this.set({ node: n.node }, n.healthy ? 1 : 0);
    },
  });
}
