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
 *   dead-letter directory (as a PackedForward request) and then removed from
 *   the buffer; with no directory set it is dropped, and the log line and
 *   metric say so. A dead-letter write that fails keeps the chunk buffered: it
 *   is sent and, failing again, written again after a backoff (counted, logged,
 *   and shown in /readyz until a write succeeds).
 * - Every settled send has an owner: nothing here rejects unhandled.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { ChunkBuffer, SealedChunk } from '@tributary/buffer';
import { Codes, type Logger, backoffDelay, writeFileAtomic } from '@tributary/core';
import {
  type ClientCredentials,
  ForwardConnection,
  ProtocolErrorCode,
  encodePackedForward,
  isProtocolErrorCode,
  packedForwardParts,
} from '@tributary/forward-protocol';
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
  /** Chunks sent on each connection and not settled yet. */
  private readonly sentOn = new WeakMap<ForwardConnection, number>();
  /** Why dead-letter writes fail, until one succeeds. */
  private deadLetterProblem: string | null = null;

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

  /** Why the output cannot do its job now, or null (for /readyz). */
  problem(): string | null {
    return this.deadLetterProblem;
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
          if (node.conn === conn && !this.stopped) this.nodeFailed(node, this.describeClose(node, conn, err));
          else if (isSocketError(err)) this.socketError(node, err, 'a retired connection');
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
    const gone = () => {
      node.retiring = node.retiring.filter((c) => c !== conn);
    };
    conn.end().then(gone, (err: Error) => {
      gone();
      this.socketError(node, err, 'a retiring connection');
    });
  }

  /** The close of a connection in use, worded by what it cost: a plain close with nothing in flight says so. */
  private describeClose(node: Node, conn: ForwardConnection, err: Error): Error {
    if (isSocketError(err) || (this.sentOn.get(conn) ?? 0) > 0) return err;
    return new Error(`Connection to ${node.name} was closed by the aggregator with nothing in flight.`);
  }

  private socketError(node: Node, err: Error, where: string): void {
    this.options.metrics.socketErrors.inc({ node: node.name });
    this.options.logger.warn(
      { code: Codes.TRB_OUT_SOCKET_ERROR, node: node.name, err: err.message },
      `Socket error on ${where} to ${node.name}: ${err.message}`,
    );
  }

  private nodeFailed(node: Node, err: Error): void {
    if (isSocketError(err)) this.options.metrics.socketErrors.inc({ node: node.name });
    if (node.conn) {
      const c = node.conn;
      node.conn = null;
      c.destroy(err);
    }
    node.failures++;
    node.downUntil = Date.now() + backoffDelay(node.failures, { initialMs: this.options.retry.initialMs, maxMs: this.options.retry.maxMs });
    this.options.metrics.nodeFailures.inc({ node: node.name });
    this.options.logger.warn(
      { code: Codes.TRB_OUT_NODE_DOWN, node: node.name, err: err.message },
      `Aggregator ${node.name} is unavailable: ${err.message}`,
    );
    setTimeout(() => this.pump(), node.downUntil - Date.now() + 5).unref();
  }

  private send(node: Node, conn: ForwardConnection, chunk: SealedChunk): void {
    const { buffer, metrics } = this.options;
    const chunkId = chunk.id.toString('base64');
    const started = Date.now();
    node.assigned++;
    this.sentOn.set(conn, (this.sentOn.get(conn) ?? 0) + 1);
    let slotFree = false;
    const freeSlot = () => {
      if (slotFree) return;
      slotFree = true;
      node.assigned--;
      this.sentOn.set(conn, (this.sentOn.get(conn) ?? 1) - 1);
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
      .catch((err: Error) => {
        // Not expected (ack and chunkFailed handle their errors): the chunk goes back to the queue.
        this.options.logger.error(
          { code: Codes.TRB_OUT_INTERNAL, chunk: chunkId, err: err.message },
          `Settling chunk ${chunkId} failed unexpectedly: ${err.message}; it is retried.`,
        );
        this.options.metrics.retries.inc();
        buffer.release(chunk, Date.now() + this.options.retry.initialMs);
      })
      .finally(() => {
        freeSlot();
        this.inFlight.delete(p);
        this.pump();
      });
    this.inFlight.add(p);
  }

  /** Never rejects: the chunk is released for a retry, dead-lettered, or dropped (and logged and counted either way). */
  private async chunkFailed(chunk: SealedChunk, err: Error): Promise<void> {
    const { retry, buffer, metrics, logger } = this.options;
    const id = chunk.id.toString('base64');
    metrics.retries.inc();
    const retryLater = () => buffer.release(chunk, Date.now() + backoffDelay(chunk.attempts - 1, retry));
    // Connection failures are reported per node (nodeFailed); anything else (a chunk that cannot be read back) per chunk.
    if (!isProtocolErrorCode((err as { code?: string }).code)) {
      logger.warn(
        { code: Codes.TRB_OUT_CHUNK_FAILED, chunk: id, attempts: chunk.attempts, err: err.message },
        `Sending chunk ${id} failed (attempt ${chunk.attempts}): ${err.message}`,
      );
    }
    if (retry.maxAttempts === null || chunk.attempts < retry.maxAttempts) {
      retryLater();
      return;
    }
    if (!retry.deadLetterPath) {
      metrics.deadLetters.inc({ outcome: 'dropped' }, chunk.count);
      logger.error(
        { code: Codes.TRB_OUT_DROPPED, chunk: id, attempts: chunk.attempts, err: err.message },
        `Chunk ${id} (${chunk.count} events) failed ${chunk.attempts} times and was dropped (no dead_letter_path is set): ${err.message}`,
      );
      await buffer.ack(chunk);
      return;
    }
    try {
      await this.writeDeadLetter(chunk, retry.deadLetterPath);
    } catch (dlErr) {
      this.deadLetterProblem = `the dead-letter directory ${retry.deadLetterPath} cannot be written (${(dlErr as Error).message})`;
      metrics.deadLetterFailures.inc();
      logger.error(
        { code: Codes.TRB_OUT_DEAD_LETTER_FAILED, chunk: id, dir: retry.deadLetterPath, err: (dlErr as Error).message },
        `Chunk ${id} (${chunk.count} events) failed ${chunk.attempts} times, and writing it to the dead-letter directory ${retry.deadLetterPath} failed: ${(dlErr as Error).message}. It stays buffered and is retried.`,
      );
      retryLater();
      return;
    }
    this.deadLetterProblem = null;
    metrics.deadLetters.inc({ outcome: 'written' }, chunk.count);
    logger.error(
      { code: Codes.TRB_OUT_DEAD_LETTER, chunk: id, attempts: chunk.attempts, dir: retry.deadLetterPath, err: err.message },
      `Chunk ${id} (${chunk.count} events) failed ${chunk.attempts} times and went to the dead-letter directory ${retry.deadLetterPath}: ${err.message}`,
    );
    await buffer.ack(chunk);
  }

  /** Writes the chunk as one PackedForward request, whole or not at all (temp file, then rename). */
  private async writeDeadLetter(chunk: SealedChunk, dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const entries = Buffer.concat(await this.options.buffer.read(chunk));
    const file = join(dir, `${chunk.id.toString('hex')}.msgpack`);
    // synced before the rename: the buffered chunk is deleted once this resolves, so this copy must survive power loss
    await writeFileAtomic(file, encodePackedForward(chunk.tag, entries, { size: chunk.count }));
  }
}

/** A connection that failed on the socket (it carries the socket's error) or timed out waiting for an ack. */
function isSocketError(err: Error): boolean {
  return err.cause !== undefined || (err as { code?: string }).code === ProtocolErrorCode.AckTimeout;
}
