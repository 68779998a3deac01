/**
 * The edge forwarder: forward and HTTP inputs → buffer → forward output.
 *
 * Lifecycle: `start` opens the buffer (recovering what an earlier run left),
 * then the output, then the inputs; `stop` (SIGTERM) closes the inputs,
 * seals every open chunk, flushes for up to `shutdown_grace_ms`, and leaves
 * whatever is unsent on disk for the next start.
 */
import { readFileSync } from 'node:fs';
import { type Filesystem, type Logger, type Registry, createRegistry, startOpsServer } from '@tributary/core';
import type { ForwardChunk } from '@tributary/forward-protocol';
import { type Input, createForwardInput, createHttpInput } from '@tributary/inputs';
import type { ChunkBuffer } from './buffer/chunk-buffer';
import { DiskBuffer } from './buffer/disk-buffer';
import { MemoryBuffer } from './buffer/memory-buffer';
import type { ForwarderConfig } from './config';
import { type ForwarderMetrics, createForwarderMetrics, registerStateGauges } from './metrics';
import { ForwardOutput } from './output/forward-output';

export interface ForwarderPorts {
  forward: number;
  http: number | null;
  metrics: number;
}

/** What a test (or an embedding) may replace. */
export interface ForwarderDeps {
  /** The disk buffer's filesystem (a FaultyFilesystem in fault-injection tests). */
  fs?: Filesystem;
}

/** On SIGTERM, how long requests already read may finish (and be acked) before the inputs cut their connections. */
const INPUT_STOP_GRACE_MS = 2000;

/** Repeats of one buffer I/O failure are logged at most this often (every one is counted). */
const IO_ERROR_LOG_INTERVAL_MS = 5000;

export class Forwarder {
  private stopping = false;
  private readonly sealTimer: NodeJS.Timeout;

  private constructor(
    readonly config: ForwarderConfig,
    readonly buffer: ChunkBuffer,
    readonly output: ForwardOutput,
    private readonly inputs: Input[],
    private readonly ops: { port: number; close(): Promise<void> },
    readonly metrics: ForwarderMetrics,
    readonly registry: Registry,
    private readonly logger: Logger,
  ) {
    this.sealTimer = setInterval(() => buffer.sealDue(Date.now()), Math.max(10, Math.floor(config.buffer.flush_interval_ms / 4)));
    this.sealTimer.unref();
  }

  get ports(): ForwarderPorts {
    return {
      forward: this.port('forward') as number,
      http: this.port('http'),
      metrics: this.ops.port,
    };
  }

  private port(name: string): number | null {
    return this.inputs.find((i) => i.name === name)?.address.port ?? null;
  }

  static async start(config: ForwarderConfig, logger: Logger, deps: ForwarderDeps = {}): Promise<Forwarder> {
    const registry = createRegistry();
    const metrics = createForwarderMetrics(registry);
    const limits = {
      maxBytes: config.buffer.max_bytes,
      chunkLimitBytes: config.buffer.chunk_limit_bytes,
      flushIntervalMs: config.buffer.flush_interval_ms,
      overflow: config.buffer.overflow,
    };
    const ackedIds = { maxEntries: config.buffer.acked_chunk_ids.max_entries, ttlMs: config.buffer.acked_chunk_ids.ttl_ms };
    let buffer: DiskBuffer | MemoryBuffer;
    if (config.buffer.type === 'disk') {
      const opened = await DiskBuffer.open({
        ...limits,
        path: config.buffer.path,
        fsync: config.buffer.fsync,
        fsyncIntervalMs: config.buffer.fsync_interval_ms,
        memoryCacheBytes: config.buffer.memory_cache_bytes,
        ackedIds,
        fs: deps.fs,
      });
      buffer = opened.buffer;
      const events = opened.recovered.reduce((n, r) => n + r.events, 0);
      if (opened.recovered.length)
        logger.info(
          { code: 'TRB_BUF_RECOVERED', chunks: opened.recovered.length, events },
          `Recovered ${events} buffered events from ${config.buffer.path}.`,
        );
      for (const r of opened.recovered.filter((x) => x.problem)) {
        logger.warn(
          { code: 'TRB_BUF_RECOVERY_SKIP', file: r.file, skippedBytes: r.skippedBytes },
          `Buffer file ${r.file}: ${r.problem}; kept ${r.events} events, skipped ${r.skippedBytes} bytes.`,
        );
      }
    } else {
      buffer = new MemoryBuffer(limits, ackedIds);
    }
    buffer.onDrop = (chunk) => {
      metrics.droppedEvents.inc(chunk.count);
      logger.warn(
        { code: 'TRB_BUF_DROPPED', events: chunk.count },
        `The buffer is full: dropped the oldest chunk (${chunk.count} events) under the drop_oldest policy.`,
      );
    };
    const ioLogged = new Map<string, { at: number; suppressed: number }>();
    buffer.onIoError = (op, err, what) => {
      const code = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
      metrics.bufferIoErrors.inc({ op, code });
      const key = `${op}:${code}`;
      const last = ioLogged.get(key);
      const now = Date.now();
      if (last && now - last.at < IO_ERROR_LOG_INTERVAL_MS) {
        last.suppressed++;
        return;
      }
      ioLogged.set(key, { at: now, suppressed: 0 });
      const repeats = last?.suppressed ? ` (${last.suppressed} more like it since the last report)` : '';
      logger.error(
        { code: 'TRB_BUF_IO', op, errno: code, err: err.message },
        `Disk buffer ${op} failed: ${err.message}. ${what}${repeats}`,
      );
    };

    const tls = config.output.tls
      ? {
          ca: config.output.tls.ca_path ? readFileSync(config.output.tls.ca_path) : undefined,
          rejectUnauthorized: !config.output.tls.insecure_skip_verify,
        }
      : undefined;
    const output = new ForwardOutput({
      servers: config.output.servers.map((s) => ({ ...s })),
      buffer,
      compress: config.output.compress,
      ackTimeoutMs: config.output.ack_timeout_ms,
      connectTimeoutMs: config.output.connect_timeout_ms,
      window: config.output.window,
      maxConnectionAgeMs: config.output.max_connection_age_ms,
      retry: {
        initialMs: config.output.retry.initial_ms,
        maxMs: config.output.retry.max_ms,
        maxAttempts: config.output.retry.max_attempts,
        deadLetterPath: config.output.retry.dead_letter_path,
      },
      security: config.output.security
        ? {
            hostname: config.output.security.self_hostname,
            sharedKey: config.output.security.shared_key,
            username: config.output.security.username,
            password: config.output.security.password,
          }
        : undefined,
      tls,
      logger,
      metrics,
    });
    registerStateGauges(registry, buffer, () => output.nodeHealth());
    output.start();

    const accepted = (input: string) => (chunks: ForwardChunk[]) => {
      let events = 0;
      let bytes = 0;
      for (const c of chunks) {
        events += c.count;
        bytes += c.entries.length;
      }
      metrics.eventsIn.inc({ input }, events);
      metrics.bytesIn.inc({ input }, bytes);
    };
    const inputs: Input[] = [
      createForwardInput(config.forward, {
        logger,
        skipAcked: async (chunks) => {
          const fresh = await buffer.skipAcked(chunks);
          if (fresh.length < chunks.length) metrics.resentChunks.inc(chunks.length - fresh.length);
          return fresh;
        },
        onAccepted: accepted('forward'),
        onRefused: (code) => metrics.inputErrors.inc({ input: 'forward', code }),
        chunkLimitBytes: config.buffer.chunk_limit_bytes,
      }),
    ];
    if (config.http.enabled) {
      inputs.push(
        createHttpInput(config.http, {
          logger,
          isFull: () => buffer.isFull(),
          onAccepted: accepted('http'),
          onRefused: (code) => metrics.inputErrors.inc({ input: 'http', code }),
          chunkLimitBytes: config.buffer.chunk_limit_bytes,
        }),
      );
    }
    for (const input of inputs) await input.start((chunks) => buffer.append(chunks));
    let forwarder: Forwarder | null = null;
    const ops = await startOpsServer({
      host: config.metrics.bind,
      port: config.metrics.port,
      registry,
      notReady: () => (forwarder?.stopping ? 'draining' : (buffer.problem() ?? output.problem())),
    });
    forwarder = new Forwarder(config, buffer, output, inputs, ops, metrics, registry, logger);
    logger.info({ ports: forwarder.ports }, 'Forwarder started.');
    return forwarder;
  }

  /** SIGTERM: stop accepting, flush within the grace period, keep the rest on disk. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.sealTimer);
    for (const input of this.inputs) await input.stop(INPUT_STOP_GRACE_MS);
    this.buffer.sealDue(Date.now(), true);
    await this.output.stop(this.config.shutdown_grace_ms);
    await this.buffer.close();
    await this.ops.close();
    const left = this.buffer.stats();
    this.logger.info({ events: left.events }, `Forwarder stopped; ${left.events} events stay buffered for the next start.`);
  }
}
