import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
/**
 * The aggregator: forward (and optional HTTP) sources → dedupe → durable log
 * → egress → sinks.
 *
 * Lifecycle: `start` opens the log (and seeds the embedded dedupe store from
 * it), the dedupe store, the sinks and egress, then the sources. `stop`
 * (SIGTERM): /readyz turns 503, sources stop taking chunks, in-flight ones
 * finish and are acked, connections close so forwarders move on, egress
 * finishes its batch within `shutdown_grace_ms`, exit.
 */
import { type Logger, type Registry, createRegistry, startOpsServer } from '@tributary/core';
import type { ForwardServer } from '@tributary/forward-protocol';
import { createForwardInput, createHttpInput } from '@tributary/forwarder';
import type { FastifyInstance } from 'fastify';
import Redis, { Cluster } from 'ioredis';
import type { AggregatorConfig, SinkConfig } from './config';
import type { DedupeStore } from './dedupe/dedupe-store';
import { EmbeddedDedupe } from './dedupe/embedded-dedupe';
import { RedisDedupe } from './dedupe/redis-dedupe';
import { EgressWorker } from './egress/egress-worker';
import { createIngest } from './ingest';
import type { DurableLog } from './log/durable-log';
import { EmbeddedLog } from './log/embedded-log';
import { KafkaLog } from './log/kafka-log';
import { type AggregatorMetrics, createAggregatorMetrics } from './metrics';
import { FileSink } from './sinks/file-sink';
import type { Sink } from './sinks/sink';

function awsOptions(s: { region: string; endpoint?: string; access_key_id?: string; secret_access_key?: string }) {
  return {
    region: s.region,
    endpoint: s.endpoint,
    credentials:
      s.access_key_id && s.secret_access_key ? { accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key } : undefined,
  };
}

/** AWS SDK modules load only when an AWS sink is configured: a file-only node starts faster. */
async function createSink(s: SinkConfig, config: AggregatorConfig, metrics: AggregatorMetrics): Promise<Sink> {
  switch (s.type) {
    case 'file':
      return new FileSink({ name: s.name, path: s.path, fields: config.fields });
    case 'aws_s3': {
      const { S3Client } = await import('@aws-sdk/client-s3');
      const { S3Sink } = await import('./sinks/s3-sink');
      return new S3Sink({
        name: s.name,
        client: new S3Client({ ...awsOptions(s), forcePathStyle: s.force_path_style }),
        bucket: s.bucket,
        prefix: s.prefix,
        fields: config.fields,
      });
    }
    case 'aws_firehose': {
      const { FirehoseClient } = await import('@aws-sdk/client-firehose');
      const { FirehoseSink } = await import('./sinks/firehose/sink');
      return new FirehoseSink({
        name: s.name,
        // The sink owns retries (only failed records, with backoff): the SDK makes one attempt per call.
        client: new FirehoseClient({ ...awsOptions(s), maxAttempts: 1 }),
        deliveryStream: s.delivery_stream,
        fields: config.fields,
        maxRecordBytes: s.max_record_bytes,
        maxAttempts: s.max_attempts,
        backoff: { initialMs: config.egress.retry_initial_ms, maxMs: config.egress.retry_max_ms },
        deadLetterPath: s.dead_letter_path,
        onStats: (st) => {
          metrics.sinkCalls.inc({ sink: s.name }, st.calls);
          metrics.failedRecords.inc({ sink: s.name }, st.failedRecords);
          metrics.deadLetters.inc({ sink: s.name }, st.deadLetters);
        },
      });
    }
  }
}

export class Aggregator {
  private draining = false;

  private constructor(
    readonly config: AggregatorConfig,
    readonly log: DurableLog,
    private readonly dedupe: DedupeStore | null,
    private readonly sinks: Sink[],
    private readonly egress: EgressWorker,
    private readonly forward: ForwardServer,
    private readonly http: FastifyInstance | null,
    private readonly ops: { port: number; close(): Promise<void> },
    readonly registry: Registry,
    readonly metrics: AggregatorMetrics,
    private readonly logger: Logger,
  ) {}

  get ports(): { forward: number; http: number | null; metrics: number } {
    return {
      forward: this.forward.address.port,
      http: this.http ? (this.http.server.address() as AddressInfo).port : null,
      metrics: this.ops.port,
    };
  }

  static async start(config: AggregatorConfig, logger: Logger, injected: { redis?: Redis | Cluster } = {}): Promise<Aggregator> {
    const registry = createRegistry();
    const metrics = createAggregatorMetrics(registry);

    const log: DurableLog =
      config.log.type === 'kafka' && config.log.kafka
        ? new KafkaLog({
            brokers: [...config.log.kafka.brokers],
            clientId: config.log.kafka.client_id,
            topic: config.log.kafka.topic,
            partitions: config.log.kafka.partitions,
            replicationFactor: config.log.kafka.replication_factor,
            minInsyncReplicas: config.log.kafka.min_insync_replicas,
            compression: config.log.kafka.compression,
            partitionBy: config.log.kafka.partition_by,
            ssl: config.log.kafka.ssl,
            requestTimeoutMs: config.log.kafka.request_timeout_ms,
          })
        : new EmbeddedLog({
            path: config.log.path,
            segmentBytes: config.log.segment_bytes,
            retentionBytes: config.log.retention_bytes,
            retentionMs: config.log.retention_ms,
          });
    await log.start();

    let dedupe: DedupeStore | null = null;
    const d = config.dedupe;
    if (d.type === 'redis') {
      const r = d.redis ?? { key_prefix: 'trb:dd:', command_timeout_ms: 1000 };
      const opts = { enableAutoPipelining: true, commandTimeout: r.command_timeout_ms, maxRetriesPerRequest: 1, lazyConnect: false };
      const client =
        injected.redis ??
        (r.cluster_nodes?.length
          ? new Cluster(
              r.cluster_nodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1] ?? 6379) })),
              { enableAutoPipelining: true, redisOptions: opts },
            )
          : new Redis(r.url ?? 'redis://127.0.0.1:6379', opts));
      client.on('error', () => {});
      dedupe = new RedisDedupe({
        client,
        owner: config.node_id ?? hostname(),
        prefix: r.key_prefix,
        claimTtlMs: d.claim_ttl_ms,
        doneTtlMs: d.done_ttl_ms,
        onUnavailable: d.on_unavailable,
        onError: (err) => {
          metrics.dedupeUnavailable.inc();
          logger.warn({ code: 'TRB_DEDUPE_UNAVAILABLE', err: err.message }, `Redis dedupe failed (${d.on_unavailable}): ${err.message}`);
        },
      });
      if (log instanceof EmbeddedLog) {
        const converted = await dedupe.recover(log.recoveredKeys().slice(-1000)).catch(() => 0);
        if (converted) logger.info({ keys: converted }, `Marked ${converted} chunks done that this node had logged before it stopped.`);
      }
    } else if (d.type === 'embedded') {
      const store = new EmbeddedDedupe(d.done_ttl_ms, d.max_entries);
      if (log instanceof EmbeddedLog) {
        const n = store.seed(log.recoveredKeys());
        logger.info({ keys: n }, `Embedded dedupe seeded with ${n} chunk keys from the log.`);
      }
      dedupe = store;
    }

    const byName = new Map<string, Sink>();
    for (const s of config.sinks) byName.set(s.name, await createSink(s, config, metrics));
    const egress = new EgressWorker({
      reader: await log.reader(config.egress.group),
      routes: config.egress.routes.map((r) => ({ match: r.match, sinks: r.sinks.map((n) => byName.get(n) as Sink) })),
      batchRecords: config.egress.batch_records,
      maxWaitMs: config.egress.max_wait_ms,
      backoff: { initialMs: config.egress.retry_initial_ms, maxMs: config.egress.retry_max_ms },
      logger,
      metrics: {
        eventsOut: (sink, n) => metrics.eventsOut.inc({ sink }, n),
        sinkFailure: (sink) => metrics.sinkFailures.inc({ sink }),
        unrouted: (n) => metrics.unrouted.inc(n),
        committed: (offset) => metrics.committedOffset.set(offset),
      },
    });
    egress.start();

    const ingest = createIngest({ log, dedupe, claimWaitMs: d.claim_wait_ms, metrics });
    const forward = createForwardInput(
      config.forward,
      {
        consume: (chunks) => ingest(chunks, 'forward'),
        onAccepted: () => {},
        onRefused: (code) => metrics.inputErrors.inc({ input: 'forward', code }),
      },
      logger,
    );
    await forward.listen();
    const http = config.http.enabled
      ? await createHttpInput(
          config.http,
          {
            consume: (chunks) => ingest(chunks, 'http'),
            isFull: () => false,
            onAccepted: () => {},
            onRefused: (code) => metrics.inputErrors.inc({ input: 'http', code }),
          },
          logger,
        )
      : null;
    let self: Aggregator | null = null;
    const ops = await startOpsServer({
      host: config.metrics.bind,
      port: config.metrics.port,
      registry,
      notReady: () => (self?.draining ? 'draining' : log.unavailable()),
    });
    self = new Aggregator(config, log, dedupe, [...byName.values()], egress, forward, http, ops, registry, metrics, logger);
    logger.info({ ports: self.ports, log: log.kind, dedupe: dedupe?.kind ?? 'none' }, 'Aggregator started.');
    return self;
  }

  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const grace = this.config.shutdown_grace_ms;
    await this.forward.close(grace);
    await this.http?.close();
    await this.egress.stop(grace);
    await this.log.close();
    await this.dedupe?.close();
    for (const s of this.sinks) await s.close();
    await this.ops.close();
    this.logger.info('Aggregator stopped.');
  }
}
