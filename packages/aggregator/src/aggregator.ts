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
import { LogLimiter, type Logger, type Registry, createRegistry, startOpsServer } from '@tributary/core';
import { type Input, createForwardInput, createHttpInput } from '@tributary/inputs';
import Redis, { Cluster } from 'ioredis';
import type { AggregatorConfig } from './config';
import type { DedupeStore } from './dedupe/dedupe-store';
import { EmbeddedDedupe } from './dedupe/embedded-dedupe';
import { RedisDedupe } from './dedupe/redis-dedupe';
import { EgressWorker } from './egress/egress-worker';
import { createEncoder, encoderThreads } from './egress/encoder-pool';
import { createIngest } from './ingest';
import type { DurableLog } from './log/durable-log';
import { EmbeddedLog } from './log/embedded-log';
import { KafkaLog, type KafkaLogOptions } from './log/kafka-log';
import { type AggregatorMetrics, createAggregatorMetrics } from './metrics';
import { type SinkConfig, sinkRegistry, sinkSpec } from './sinks/registry';
import type { Sink } from './sinks/sink';

/** Makes a configured sink through its type's spec in the registry. */
async function createSink(s: SinkConfig, config: AggregatorConfig, metrics: AggregatorMetrics, logger: Logger): Promise<Sink> {
  return sinkSpec(sinkRegistry, s.type).create(s, {
    logger,
    backoff: { initialMs: config.egress.retry_initial_ms, maxMs: config.egress.retry_max_ms },
    onStats: (st) => {
      metrics.sinkCalls.inc({ sink: s.name }, st.calls);
      metrics.failedRecords.inc({ sink: s.name }, st.failedRecords);
      metrics.deadLetters.inc({ sink: s.name }, st.deadLetters);
    },
  });
}

/** Longest a batch waits for egress to catch up before it is refused (the sender retries). */
const BACKLOG_WAIT_MS = 30_000;

export class Aggregator {
  private draining = false;

  private constructor(
    readonly config: AggregatorConfig,
    readonly log: DurableLog,
    private readonly dedupe: DedupeStore | null,
    private readonly sinks: Sink[],
    private readonly egress: EgressWorker,
    private readonly inputs: Input[],
    private readonly ops: { port: number; close(): Promise<void> },
    readonly registry: Registry,
    readonly metrics: AggregatorMetrics,
    private readonly logger: Logger,
  ) {}

  get ports(): { forward: number; http: number | null; metrics: number } {
    return {
      forward: this.port('forward') as number,
      http: this.port('http'),
      metrics: this.ops.port,
    };
  }

  private port(name: string): number | null {
    return this.inputs.find((i) => i.name === name)?.address.port ?? null;
  }

  static async start(
    config: AggregatorConfig,
    logger: Logger,
    injected: { redis?: Redis | Cluster; kafka?: KafkaLogOptions['client'] } = {},
  ): Promise<Aggregator> {
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
            gzipLevel: config.log.kafka.gzip_level,
            partitionBy: config.log.kafka.partition_by,
            ssl: config.log.kafka.ssl,
            requestTimeoutMs: config.log.kafka.request_timeout_ms,
            maxRequestBytes: config.log.kafka.max_request_bytes,
            readerQueueBytes: config.log.kafka.reader_queue_bytes,
            logger,
            client: injected.kafka,
          })
        : new EmbeddedLog({
            path: config.log.path,
            segmentBytes: config.log.segment_bytes,
            retentionBytes: config.log.retention_bytes,
            retentionMs: config.log.retention_ms,
          });
    await log.start();
    // Whatever is built after the log is undone, newest first, if a later step fails: a bad port or sink never leaves half a node running.
    const undo: Array<() => Promise<unknown>> = [() => log.close()];
    try {
      return await Aggregator.assemble(config, logger, injected, registry, metrics, log, undo);
    } catch (err) {
      for (const step of undo.reverse()) await step().catch(() => {}); // the start's own error is the one reported
      throw err;
    }
  }

  private static async assemble(
    config: AggregatorConfig,
    logger: Logger,
    injected: { redis?: Redis | Cluster; kafka?: KafkaLogOptions['client'] },
    registry: Registry,
    metrics: AggregatorMetrics,
    log: DurableLog,
    undo: Array<() => Promise<unknown>>,
  ): Promise<Aggregator> {
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
      client.on('error', () => {}); // every command's own rejection is handled, counted and logged by the store
      const warnEvery = new LogLimiter(10_000);
      dedupe = new RedisDedupe({
        client,
        node: config.node_id ?? hostname(),
        prefix: r.key_prefix,
        claimTtlMs: d.claim_ttl_ms,
        doneTtlMs: d.done_ttl_ms,
        onUnavailable: d.on_unavailable,
        rebuildWaitMs: d.rebuild_wait_ms,
        rebuildMaxKeys: d.rebuild_max_keys,
        // on Kafka every node's chunks are in the topic: a rebuild re-marks its tail too
        logTail: log.kind === 'kafka' ? () => log.recentKeys(d.rebuild_max_keys) : undefined,
        events: {
          error: (err) => {
            metrics.dedupeUnavailable.inc();
            logger.warn({ code: 'TRB_DEDUPE_UNAVAILABLE', err: err.message }, `Redis dedupe failed (${d.on_unavailable}): ${err.message}`);
          },
          stateLost: (reason) => {
            metrics.dedupeStateLost.inc();
            metrics.dedupeRebuilding.set(1);
            logger.warn(
              { code: 'TRB_DEDUPE_STATE_LOST', reason },
              `Redis lost the dedupe marks (${reason}); re-marking the chunks in the logs (${d.on_unavailable === 'fail_closed' ? 'no acks until then' : 'fail_open: chunks pass unchecked until then'}).`,
            );
          },
          rebuildFailed: (err) => {
            metrics.dedupeRebuildFailures.inc();
            logger.warn(
              { code: 'TRB_DEDUPE_REBUILD', err: err.message },
              `Re-marking the logged chunks in Redis failed; retrying: ${err.message}`,
            );
          },
          rebuilt: (rep) => {
            metrics.dedupeRebuilding.set(0);
            if (rep.duplicates) metrics.dedupeDuplicates.inc(rep.duplicates);
            if (rep.missingPeers.length) {
              logger.warn(
                { code: 'TRB_DEDUPE_REBUILD', peers: rep.missingPeers },
                `Dedupe marks trusted again after ${rep.ms} ms although ${rep.missingPeers.join(', ')} did not report re-marking its log: resends of its chunks may be written twice.`,
              );
            }
            if (rep.duplicates) {
              logger.warn(
                { code: 'TRB_DEDUPE_DUPLICATES', chunks: rep.duplicates },
                `${rep.duplicates} chunk(s) of this node's log were written by another node too while Redis had lost its marks.`,
              );
            }
            logger.info(
              { keys: rep.keys, ms: rep.ms, afterLoss: rep.afterLoss },
              `Marked ${rep.keys} chunks of this node's log done in Redis in ${rep.ms} ms.`,
            );
          },
          unverified: (n) => {
            metrics.dedupeUnverified.inc(n);
            const skipped = warnEvery.admit('TRB_DEDUPE_UNVERIFIED');
            if (skipped !== null) {
              logger.warn(
                { code: 'TRB_DEDUPE_UNVERIFIED', skipped },
                'fail_open: writing chunks while the Redis dedupe marks are being rebuilt; resent ones may be written twice (tributary_aggregator_dedupe_unverified_chunks_total).',
              );
            }
          },
          staleClaims: (n) => {
            metrics.dedupeStaleClaims.inc(n);
            logger.info({ chunks: n }, `Took over ${n} claim(s) a restarted node held on chunks it never logged.`);
          },
        },
      });
    } else if (d.type === 'embedded') {
      dedupe = new EmbeddedDedupe(d.done_ttl_ms, d.max_entries);
    }
    if (dedupe) {
      const started = dedupe;
      undo.push(() => started.close());
      const logged = log instanceof EmbeddedLog ? log.recoveredKeys() : [];
      await dedupe.start(logged);
      logger.info({ keys: logged.length, dedupe: dedupe.kind }, `Dedupe started with ${logged.length} chunk keys from the log.`);
    }

    const byName = new Map<string, Sink>();
    for (const s of config.sinks) {
      const sink = await createSink(s, config, metrics, logger);
      undo.push(() => sink.close());
      byName.set(s.name, sink);
    }
    const e = config.egress;
    const egress = new EgressWorker({
      reader: await log.reader(e.group),
      routes: e.routes.map((r) => ({ match: r.match, sinks: r.sinks.map((n) => byName.get(n) as Sink) })),
      encoder: createEncoder(encoderThreads(e.encoder_threads), logger),
      fields: config.fields,
      pollRecords: e.batch_records,
      maxWaitMs: e.max_wait_ms,
      objects: { bytes: e.objects.bytes, ageMs: e.objects.age_ms, maxTags: e.objects.max_tags },
      backoff: { initialMs: e.retry_initial_ms, maxMs: e.retry_max_ms },
      logger,
      metrics: {
        eventsOut: (sink, n) => metrics.eventsOut.inc({ sink }, n),
        sinkFailure: (sink) => metrics.sinkFailures.inc({ sink }),
        deadLetters: (sink, n) => metrics.deadLetters.inc({ sink }, n),
        unrouted: (n) => metrics.unrouted.inc(n),
        committed: (offset) => metrics.committedOffset.set(offset),
        loopError: (stage) => metrics.egressErrors.inc({ stage }),
        objectWritten: (sink, n) => metrics.objectsOut.inc({ sink }, n),
      },
    });
    egress.start();
    undo.push(() => egress.stop(0));

    const ingest = createIngest({
      log,
      dedupe,
      claimWaitMs: d.claim_wait_ms,
      maxBacklogBytes: config.log.type === 'embedded' ? config.log.max_backlog_bytes : 0,
      backlogWaitMs: BACKLOG_WAIT_MS,
      metrics,
    });
    const inputs: Input[] = [
      createForwardInput(config.forward, { logger, onRefused: (code) => metrics.inputErrors.inc({ input: 'forward', code }) }),
    ];
    if (config.http.enabled) {
      inputs.push(createHttpInput(config.http, { logger, onRefused: (code) => metrics.inputErrors.inc({ input: 'http', code }) }));
    }
    for (const input of inputs) {
      await input.start((chunks) => ingest(chunks, input.name));
      undo.push(() => input.stop(0));
    }
    let self: Aggregator | null = null;
    const ops = await startOpsServer({
      host: config.metrics.bind,
      port: config.metrics.port,
      registry,
      notReady: () => (self?.draining ? 'draining' : (log.unavailable() ?? dedupe?.problem() ?? egress.problem())),
    });
    self = new Aggregator(config, log, dedupe, [...byName.values()], egress, inputs, ops, registry, metrics, logger);
    logger.info({ ports: self.ports, log: log.kind, dedupe: dedupe?.kind ?? 'none' }, 'Aggregator started.');
    return self;
  }

  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const grace = this.config.shutdown_grace_ms;
    for (const input of this.inputs) await input.stop(grace);
    await this.egress.stop(grace);
    await this.log.close();
    await this.dedupe?.close();
    for (const s of this.sinks) await s.close();
    await this.ops.close();
    this.logger.info('Aggregator stopped.');
  }
}
