/**
 * The aggregator: forward (and optional HTTP) sources → dedupe → durable log
 * → egress → sinks.
 *
 * `start` only wires: the log, the dedupe store, the sinks and the inputs
 * each come from their registry's spec (which maps the config to options).
 *
 * Lifecycle: `start` opens the log, the dedupe store (seeded with the keys
 * the log recovered), the sinks and egress, then the inputs. `stop`
 * (SIGTERM): /readyz turns 503, sources stop taking chunks, in-flight ones
 * finish and are acked, connections close so forwarders move on, egress
 * finishes its batch within `shutdown_grace_ms`, exit.
 */
import { hostname } from 'node:os';
import { DEAD_LETTER_KINDS, type Logger, type Registry, type Sink, createPart, createRegistry, startOpsServer } from '@tributary/core';
import { type DedupeContext, type DedupeSpec, type DedupeStore, dedupeRegistry } from '@tributary/dedupe';
import { emptyTotals, registerFilterMetrics } from '@tributary/filters';
import { type Input, createInputs } from '@tributary/inputs';
import { type DurableLog, type KafkaLogOptions, type LogPart, type LogSpec, logRegistry } from '@tributary/log';
import { EgressWorker, type SinkConfig, type SinkSpec, egressOptions, sinkRegistry } from '@tributary/sinks';
import type { AggregatorConfig } from './config';
import { createIngest } from './ingest';
import { type AggregatorMetrics, createAggregatorMetrics } from './metrics';

/** Makes a configured sink through its type's spec in the registry. */
async function createSink(s: SinkConfig, config: AggregatorConfig, metrics: AggregatorMetrics, logger: Logger): Promise<Sink> {
  return createPart<SinkSpec>(
    sinkRegistry,
    s,
    {
      logger,
      backoff: { initialMs: config.egress.retry_initial_ms, maxMs: config.egress.retry_max_ms },
      onStats: (st) => {
        metrics.sinkCalls.inc({ sink: s.name }, st.calls);
        metrics.failedRecords.inc({ sink: s.name }, st.failedRecords);
        metrics.deadLetters.inc({ sink: s.name }, st.deadLetters);
      },
    },
    'sink',
  );
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
    injected: { redis?: DedupeContext['redisClient']; kafka?: KafkaLogOptions['client'] } = {},
  ): Promise<Aggregator> {
    const registry = createRegistry();
    const metrics = createAggregatorMetrics(registry);
    const logPart = createPart<LogSpec>(logRegistry, config.log, { logger, kafkaClient: injected.kafka }, 'log');
    await logPart.log.start();
    // Whatever is built after the log is undone, newest first, if a later step fails: a bad port or sink never leaves half a node running.
    const undo: Array<() => Promise<unknown>> = [() => logPart.log.close()];
    try {
      return await Aggregator.assemble(config, logger, injected, registry, metrics, logPart, undo);
    } catch (err) {
      // The start's own error is the one reported; a step that fails to undo is logged.
      for (const step of undo.reverse()) {
        await step().catch((e: Error) => logger.warn({ err: e.message }, `Undoing a failed aggregator start: ${e.message}`));
      }
      throw err;
    }
  }

  private static async assemble(
    config: AggregatorConfig,
    logger: Logger,
    injected: { redis?: DedupeContext['redisClient'] },
    registry: Registry,
    metrics: AggregatorMetrics,
    { log, maxBacklogBytes }: LogPart,
    undo: Array<() => Promise<unknown>>,
  ): Promise<Aggregator> {
    const { store: dedupe, claimWaitMs } = createPart<DedupeSpec>(
      dedupeRegistry,
      config.dedupe,
      { logger, metrics, node: config.node_id ?? hostname(), log, redisClient: injected.redis },
      'dedupe',
    );
    if (dedupe) {
      undo.push(() => dedupe.close());
      const logged = log.recoveredKeys?.() ?? [];
      await dedupe.start(logged);
      logger.info({ keys: logged.length, dedupe: dedupe.kind }, `Dedupe started with ${logged.length} chunk keys from the log.`);
    }

    const byName = new Map<string, Sink>();
    for (const s of config.sinks) {
      const sink = await createSink(s, config, metrics, logger);
      undo.push(() => sink.close());
      byName.set(s.name, sink);
    }
    // Filters run at egress, in the encoder threads, each loading @tributary/filters; their counts come back with each job.
    const filterTotals = emptyTotals(config.filters);
    registerFilterMetrics(registry, 'aggregator', config.filters, () => filterTotals);
    const egress = new EgressWorker(
      egressOptions(config.egress, {
        reader: await log.reader(config.egress.group),
        sinks: byName,
        fields: config.fields,
        filter: config.filters.length ? { module: require.resolve('@tributary/filters'), options: { filters: config.filters } } : undefined,
        logger,
        metrics: {
          eventsOut: (sink, n) => metrics.eventsOut.inc({ sink }, n),
          sinkFailure: (sink) => metrics.sinkFailures.inc({ sink }),
          deadLetters: (sink, n) => metrics.deadLetters.inc({ sink }, n),
          deadLetterEvents: (reason, n) => metrics.egressDeadLetters.inc({ reason }, n),
          unrouted: (n) => metrics.unrouted.inc(n),
          committed: (offset) => metrics.committedOffset.set(offset),
          loopError: (stage) => metrics.egressErrors.inc({ stage }),
          objectWritten: (sink, n) => metrics.objectsOut.inc({ sink }, n),
          filtered: (c) => {
            c.dropped.forEach((n, i) => {
              filterTotals.dropped[i] += n;
            });
            c.failed.forEach((n, i) => {
              filterTotals.failed[i] += n;
            });
            filterTotals.unreadable += c.unreadable;
          },
        },
      }),
    );
    // every reason shows from the start (0), so a dashboard or alert needs no first dead letter to see the series
    for (const reason of DEAD_LETTER_KINDS) metrics.egressDeadLetters.inc({ reason }, 0);
    egress.start();
    undo.push(() => egress.stop(0));

    const ingest = createIngest({
      log,
      dedupe,
      claimWaitMs,
      maxBacklogBytes,
      backlogWaitMs: BACKLOG_WAIT_MS,
      metrics,
    });
    // ingest resolves once the log has written the chunks and keeps nothing of them: inputs may reuse their buffers
    const inputs = createInputs(config, {
      logger,
      onRefused: (input, code) => metrics.inputErrors.inc({ input, code }),
      consumeReleasesBuffers: true,
    });
    for (const input of inputs) {
      undo.push(() => input.stop(0)); // also one whose start failed half way
      await input.start((chunks) => ingest(chunks, input.name));
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
