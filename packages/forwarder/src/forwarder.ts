/**
 * The edge forwarder: forward and HTTP inputs → filters → buffer → forward output.
 *
 * Lifecycle: `start` opens the buffer (recovering what an earlier run left),
 * then the output, then the inputs; `stop` (SIGTERM) closes the inputs,
 * seals every open chunk, flushes for up to `shutdown_grace_ms`, and leaves
 * whatever is unsent on disk for the next start. Each part's config-to-options
 * mapping lives in its spec (@tributary/buffer's registry, output/config.ts,
 * the input registry); `start` only wires them.
 */
import { hostname } from 'node:os';
import { type ForwarderBuffer, createBuffer } from '@tributary/buffer';
import { type Filesystem, type Logger, type Registry, createRegistry, startOpsServer } from '@tributary/core';
import { type FilterChain, OutputPool, createFilterChain, filterChunks, filterRegistry, registerFilterMetrics } from '@tributary/filters';
import { type ForwardChunk, countChunkIds } from '@tributary/forward-protocol';
import { type Consume, type Input, consumeInPieces, createInputs } from '@tributary/inputs';
import type { ForwarderConfig } from './config';
import { type ForwarderMetrics, createForwarderMetrics, registerStateGauges } from './metrics';
import { forwardOutputSpec } from './output/config';
import type { ForwardOutput } from './output/forward-output';

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

/** Free staging buffers kept for filtered hand-offs, at most (about a connection window of 1 MiB hand-offs). */
const STAGING_POOL_BYTES = 16 * 1024 * 1024;

/**
 * The inputs' hand-off: the filters run before the buffer, so dropped events
 * cost no disk; a record they grew is cut again at the chunk limit. The
 * entries they write go into a staging buffer reused once the buffer stored
 * them (the buffer keeps no view of what it appended).
 */
function filteredConsume(filters: FilterChain, buffer: ForwarderBuffer, chunkLimitBytes: number, metrics: ForwarderMetrics): Consume {
  // Pieces of a resent chunk that were stored the first time (and chunks a racing resend stored) are left out: counted as resent.
  const append = async (c: ForwardChunk[]) => {
    const leftOut = await buffer.append(c);
    if (leftOut > 0) metrics.resentChunks.inc(leftOut);
  };
  // The input cut its batches at the limit already; the filters may grow records past it, and that second cut's
  // piece ids are its own (`CutStage`).
  if (!filters.size) return (chunks) => consumeInPieces(append, chunks, chunkLimitBytes, 'filtered');
  const staging = new OutputPool(STAGING_POOL_BYTES);
  return async (chunks) => {
    let bytes = 0;
    for (const c of chunks) bytes += c.entries.length;
    const out = staging.acquire(bytes);
    try {
      await consumeInPieces(append, filterChunks(filters, chunks, out), chunkLimitBytes, 'filtered');
    } finally {
      staging.release(out);
    }
  };
}

/** On SIGTERM, how long requests already read may finish (and be acked) before the inputs cut their connections. */
const INPUT_STOP_GRACE_MS = 2000;

export class Forwarder {
  private stopping = false;
  private readonly sealTimer: NodeJS.Timeout;

  private constructor(
    readonly config: ForwarderConfig,
    readonly buffer: ForwarderBuffer,
    readonly output: ForwardOutput,
    private readonly inputs: Input[],
    private readonly filters: FilterChain,
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

  /**
   * Resolves once every input listens and the ops server is up. Rejects when
   * a part cannot start (a port in use, an unreadable buffer directory or CA
   * file); what was started by then is stopped again, newest first, and the
   * buffer closed, so a failed start leaves nothing listening or open.
   */
  static async start(config: ForwarderConfig, logger: Logger, deps: ForwarderDeps = {}): Promise<Forwarder> {
    const registry = createRegistry();
    const metrics = createForwarderMetrics(registry);
    const filters = createFilterChain(config.filters, { hostname: hostname(), env: process.env, logger }, filterRegistry);
    registerFilterMetrics(registry, 'forwarder', config.filters, () => filters.totals());
    const started: Array<() => Promise<void>> = [async () => filters.close()];
    try {
      await filters.ready(); // metadata read (or its failure logged) before the first event, bounded by its timeout
      const buffer = await createBuffer(config.buffer, { logger, metrics, fs: deps.fs });
      started.push(() => buffer.close());
      const output = forwardOutputSpec.create(config.output, { buffer, logger, metrics });
      registerStateGauges(registry, buffer, () => output.nodeHealth());
      output.start();
      started.push(() => output.stop(0));

      const inputs = createInputs(config, {
        logger,
        registry,
        chunkLimitBytes: config.buffer.chunk_limit_bytes,
        // the buffer keeps no view of what it appended: the forward input reuses the buffers requests spanning
        // reads are assembled in (a fresh one per PackedForward request was garbage V8 answered with full GCs)
        consumeReleasesBuffers: true,
        skipAcked: async (chunks) => {
          const fresh = await buffer.skipAcked(chunks);
          const resent = countChunkIds(chunks) - countChunkIds(fresh);
          if (resent > 0) metrics.resentChunks.inc(resent);
          return fresh;
        },
        isFull: () => buffer.isFull(),
        onAccepted: (input, chunks) => {
          let events = 0;
          let bytes = 0;
          for (const c of chunks) {
            events += c.count;
            bytes += c.entries.length;
          }
          metrics.eventsIn.inc({ input }, events);
          metrics.bytesIn.inc({ input }, bytes);
        },
        onRefused: (input, code) => metrics.inputErrors.inc({ input, code }),
      });
      const consume = filteredConsume(filters, buffer, config.buffer.chunk_limit_bytes, metrics);
      for (const input of inputs) {
        started.push(() => input.stop(0)); // also one whose start failed half way (TCP bound, UDP not)
        await input.start(consume);
      }
      let forwarder: Forwarder | null = null;
      const ops = await startOpsServer({
        host: config.metrics.bind,
        port: config.metrics.port,
        registry,
        notReady: () => (forwarder?.stopping ? 'draining' : (buffer.problem() ?? output.problem())),
      });
      forwarder = new Forwarder(config, buffer, output, inputs, filters, ops, metrics, registry, logger);
      logger.info({ ports: forwarder.ports }, 'Forwarder started.');
      return forwarder;
    } catch (err) {
      for (const undo of started.reverse()) {
        await undo().catch((e: Error) => logger.warn({ err: e.message }, `Undoing a failed forwarder start: ${e.message}`));
      }
      throw err;
    }
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
    this.filters.close();
    await this.ops.close();
    const left = this.buffer.stats();
    this.logger.info({ events: left.events }, `Forwarder stopped; ${left.events} events stay buffered for the next start.`);
  }
}
