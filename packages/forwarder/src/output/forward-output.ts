/**
 * Delivers sealed chunks to aggregators as PackedForward with `chunk` ids and
 * required acks.
 *
 * - Nodes: weighted round robin (smooth, as nginx) over healthy primaries;
 *   standbys only while no primary is healthy. A node that fails (connect
 *   error, close, ack timeout) is out for a backoff period, then retried.
 * - Each chunk keeps its id (the buffer's, fixed at creation) on every retry to
 *   any node; a failed chunk waits a jittered exponential backoff.
 * - Each connection has a window of unacked chunks; connections older than
 *   `maxConnectionAgeMs` stop taking chunks, finish what they carry and are
 *   replaced, so new aggregators behind an NLB get traffic.
 * - With `maxAttempts`, a chunk that failed that often is written to the
 *   dead-letter directory (as a PackedForward request) and dropped from the buffer.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { type Logger, backoffDelay } from '@tributary/core';
import { type ClientCredentials, ForwardConnection, encodePackedForward, packedForwardParts } from '@tributary/forward-protocol';
import type { ChunkBuffer, SealedChunk } from '../buffer/chunk-buffer';
import type { ForwarderMetrics } from '../metrics';

export interface ServerSpec {
  host: string;
  port: number;
  weight: number;
  standby: boolean;
}

export interface ForwardOutputOptions {
  servers: ServerSpec[];
  buffer: ChunkBuffer;
  compress: 'gzip' | 'none';
  ackTimeoutMs: number;
  connectTimeoutMs: number;
  /** Unacked chunks in flight per connection. */
  window: number;
  maxConnectionAgeMs: number;
  retry: { initialMs: number; maxMs: number; maxAttempts: number | null; deadLetterPath: string | null };
  security?: ClientCredentials;
  tls?: ConnectionOptions;
  logger: Logger;
  metrics: ForwarderMetrics;
}

class Node {
  conn: ForwardConnection | null = null;
  connecting = false;
  retiring: ForwardConnection[] = [];
  failures = 0;
  /** Chunks handed to this node and not yet settled (the window). */
  assigned = 0;
  downUntil = 0;
  currentWeight = 0;

  constructor(readonly spec: ServerSpec) {}

  get name(): string {
    return `${this.spec.host}:${this.spec.port}`;
  }

  healthy(now: number): boolean {
    return this.downUntil <= now;
  }
}

export class ForwardOutput {
  private readonly nodes: Node[];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private pumping = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: ForwardOutputOptions) {
    this.nodes = options.servers.map((s) => new Node(s));
    options.buffer.onReady(() => this.pump());
  }

  start(): void {
    this.timer = setInterval(() => this.pump(), 100);
    this.timer.unref();
    this.pump();
  }

  /** Waits up to `graceMs` for chunks in flight, then closes connections. Unsent chunks stay in the buffer. */
  async stop(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && (this.inFlight.size > 0 || this.options.buffer.stats().chunks > 0)) {
      this.pump();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const n of this.nodes) {
      n.conn?.destroy();
      for (const r of n.retiring) r.destroy();
    }
    await Promise.allSettled([...this.inFlight]);
  }

  /** Health per node, for metrics and /readyz. */
  nodeHealth(): Array<{ node: string; healthy: boolean }> {
    const now = Date.now();
    return this.nodes.map((n) => ({ node: n.name, healthy: n.healthy(now) }));
  }

  /** Assigns due chunks to connections with window space; opens and rotates connections. */
  pump(): void {
    if (this.stopped || this.pumping) return;
    this.pumping = true;
    try {
      const now = Date.now();
      const pool = this.pool(now);
      for (const node of pool) {
        if (node.conn && !node.conn.closed && now - node.conn.openedAt > this.options.maxConnectionAgeMs) this.retire(node, node.conn);
        if ((!node.conn || node.conn.closed) && !node.connecting) this.connect(node);
      }
      for (;;) {
        const node = this.pickNode(pool);
        if (!node?.conn) return;
        const chunk = this.options.buffer.take(now);
        if (!chunk) return;
        this.send(node, node.conn, chunk);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Healthy primaries, or healthy standbys while no primary is healthy. */
  private pool(now: number): Node[] {
    const primaries = this.nodes.filter((n) => !n.spec.standby && n.healthy(now));
    return primaries.length ? primaries : this.nodes.filter((n) => n.spec.standby && n.healthy(now));
  }

  /** Smooth weighted round robin over pool nodes with an open connection and window space. */
  private pickNode(pool: Node[]): Node | null {
    let total = 0;
    let best: Node | null = null;
    for (const n of pool) {
      if (!n.conn || n.conn.closed || n.assigned >= this.options.window) continue;
      n.currentWeight += n.spec.weight;
      total += n.spec.weight;
      if (!best || n.currentWeight > best.currentWeight) best = n;
    }
    if (best) best.currentWeight -= total;
    return best;
  }

  private connect(node: Node): void {
    if (node.connecting) return;
    node.connecting = true;
    node.conn = null;
    ForwardConnection.connect({
      host: node.spec.host,
      port: node.spec.port,
      tls: this.options.tls,
      security: this.options.security,
      connectTimeoutMs: this.options.connectTimeoutMs,
      ackTimeoutMs: this.options.ackTimeoutMs,
    }).then(
      (conn) => {
        node.connecting = false;
        if (this.stopped) {
          conn.destroy();
          return;
        }
        node.conn = conn;
        conn.on('close', (err: Error) => {
          if (node.conn === conn && !this.stopped) this.nodeFailed(node, err);
        });
        this.pump();
      },
      (err: Error) => {
        node.connecting = false;
        this.nodeFailed(node, err);
      },
    );
  }

  private retire(node: Node, conn: ForwardConnection): void {
    node.conn = null;
    node.retiring.push(conn);
    this.options.metrics.connectionRotations.inc();
    conn.end().finally(() => {
      node.retiring = node.retiring.filter((c) => c !== conn);
    });
  }

  private nodeFailed(node: Node, err: Error): void {
    if (node.conn) {
      const c = node.conn;
      node.conn = null;
      c.destroy(err);
    }
    node.failures++;
    node.downUntil = Date.now() + backoffDelay(node.failures, { initialMs: this.options.retry.initialMs, maxMs: this.options.retry.maxMs });
    this.options.metrics.nodeFailures.inc({ node: node.name });
    this.options.logger.warn(
      { code: 'TRB_OUT_NODE_DOWN', node: node.name, err: err.message },
      `Aggregator ${node.name} is unavailable: ${err.message}`,
    );
    setTimeout(() => this.pump(), node.downUntil - Date.now() + 5).unref();
  }

  private send(node: Node, conn: ForwardConnection, chunk: SealedChunk): void {
    const { buffer, metrics } = this.options;
    const chunkId = chunk.id.toString('base64');
    const started = Date.now();
    node.assigned++;
    let slotFree = false;
    const freeSlot = () => {
      if (slotFree) return;
      slotFree = true;
      node.assigned--;
    };
    const p = buffer
      .read(chunk)
      .then((entries) => {
        const parts = packedForwardParts(chunk.tag, entries, {
          size: chunk.count,
          chunk: chunkId,
          compressed: this.options.compress === 'gzip' ? 'gzip' : undefined,
        });
        return conn.send(parts, chunkId).then(() => parts.reduce((n, p) => n + p.length, 0));
      })
      .then(
        async (wireBytes) => {
          node.failures = 0;
          metrics.eventsOut.inc(chunk.count);
          metrics.bytesOut.inc(wireBytes);
          metrics.chunksOut.inc();
          metrics.ackLatency.observe((Date.now() - started) / 1000);
          // The chunk leaves the queue at once; its window slot is free before its file is deleted.
          const removed = buffer.ack(chunk);
          freeSlot();
          this.pump();
          await removed;
        },
        (err: Error) => this.chunkFailed(chunk, err),
      )
      .finally(() => {
        freeSlot();
        this.inFlight.delete(p);
        this.pump();
      });
    this.inFlight.add(p);
  }

  private async chunkFailed(chunk: SealedChunk, err: Error): Promise<void> {
    const { retry, buffer, metrics, logger } = this.options;
    metrics.retries.inc();
    if (retry.maxAttempts !== null && chunk.attempts >= retry.maxAttempts) {
      if (retry.deadLetterPath) {
        mkdirSync(retry.deadLetterPath, { recursive: true });
        const entries = Buffer.concat(await buffer.read(chunk));
        writeFileSync(
          join(retry.deadLetterPath, `${chunk.id.toString('hex')}.msgpack`),
          encodePackedForward(chunk.tag, entries, { size: chunk.count }),
        );
      }
      metrics.deadLetters.inc(chunk.count);
      logger.error(
        { code: 'TRB_OUT_DEAD_LETTER', chunk: chunk.id.toString('base64'), attempts: chunk.attempts, err: err.message },
        `Chunk ${chunk.id.toString('base64')} (${chunk.count} events) failed ${chunk.attempts} times and went to the dead-letter directory: ${err.message}`,
      );
      await buffer.ack(chunk);
      return;
    }
    buffer.release(chunk, Date.now() + backoffDelay(chunk.attempts - 1, retry));
  }
}
