/**
 * Ingest: the forward (and HTTP) sources' `consume`. For a batch of chunks:
 *
 *   1. claim every chunk's dedupe key (one Redis round trip for the batch);
 *      `done` → acked without writing; `busy` → wait up to claim_wait_ms for
 *      the other node, then no ack (the sender resends later);
 *   2. append the claimed chunks to the durable log (resolves when durable);
 *      on failure release the claims and reject: no ack, connection closed;
 *   3. mark the written keys done (pipelined, off the ack path).
 *
 * The promise resolves only after step 2, so an ack always means "in the log".
 */
import { crc32 } from 'node:zlib';
import { Codes, RetryableError } from '@tributary/core';
import { type ClaimResult, type DedupeStore, dedupeKey } from '@tributary/dedupe';
import type { ForwardChunk } from '@tributary/forward-protocol';
import type { DurableLog, LogRecord } from '@tributary/log';
import type { AggregatorMetrics } from './metrics';

export interface IngestOptions {
  log: DurableLog;
  dedupe: DedupeStore | null;
  claimWaitMs: number;
  /**
   * While egress is this many bytes behind (`log.backlogBytes()`), ingest
   * waits before it claims or appends: senders are slowed by TCP instead of
   * the log growing without bound. 0: no bound.
   */
  maxBacklogBytes: number;
  /** How long a batch waits for egress before it is refused (retryable, no ack). */
  backlogWaitMs: number;
  metrics: AggregatorMetrics;
}

export function createIngest(options: IngestOptions): (chunks: ForwardChunk[], input: string) => Promise<void> {
  const { log, dedupe, metrics } = options;
  const waitForEgress = async () => {
    if (options.maxBacklogBytes <= 0) return;
    let backlog = log.backlogBytes();
    metrics.logBacklogBytes.set(backlog);
    if (backlog <= options.maxBacklogBytes) return;
    metrics.backlogWaits.inc();
    const deadline = Date.now() + options.backlogWaitMs;
    while (backlog > options.maxBacklogBytes) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RetryableError(
          Codes.TRB_LOG_BACKLOG,
          `Egress is ${backlog} bytes behind (log.max_backlog_bytes ${options.maxBacklogBytes}) and did not catch up within ${options.backlogWaitMs} ms; not acked, the sender retries.`,
        );
      }
      await log.waitForCommit(Math.min(left, 1000));
      backlog = log.backlogBytes();
    }
    metrics.logBacklogBytes.set(backlog);
  };
  return async (chunks, input) => {
    await waitForEgress();
    // One crc32 pass per chunk serves both the dedupe key and the log record's checksum.
    const crcs = chunks.map((c) => crc32(c.entries) >>> 0);
    const keys = chunks.map((c, i) => (c.chunkId !== undefined ? dedupeKey(c.chunkId, c.entries, crcs[i]) : null));
    const results: Array<ClaimResult | null> = keys.map(() => null);
    if (dedupe) {
      const idx = keys.flatMap((k, i) => (k ? [i] : []));
      let pending = idx;
      const deadline = Date.now() + options.claimWaitMs;
      const mine = () => idx.filter((i) => results[i] === 'claimed').map((i) => keys[i] as string);
      for (;;) {
        let claimed: ClaimResult[];
        try {
          claimed = await dedupe.claim(pending.map((i) => keys[i] as string));
        } catch (err) {
          await dedupe.release(mine()); // claims won in an earlier round would otherwise block resends until their TTL
          throw err;
        }
        pending.forEach((i, n) => {
          results[i] = claimed[n];
        });
        pending = pending.filter((i) => results[i] === 'busy');
        if (pending.length === 0 || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (pending.length) {
        metrics.chunksIn.inc({ outcome: 'claim_conflict' }, pending.length);
        await dedupe.release(mine());
        throw new RetryableError(
          Codes.TRB_DEDUPE_BUSY,
          `${pending.length} chunk(s) are being written by another node; not acked, the sender will resend.`,
        );
      }
    }
    const records: LogRecord[] = [];
    const written: string[] = [];
    let duplicates = 0;
    chunks.forEach((c, i) => {
      if (results[i] === 'done') {
        duplicates++;
        return;
      }
      const key = keys[i];
      if (key) written.push(key);
      records.push({
        tag: c.tag,
        key: key ?? '',
        count: c.count,
        entries: c.entries,
        entriesCrc: crcs[i],
        // ingest does not rewrite entries: a chunk that came gzipped goes to the log with the sender's bytes
        ...(c.gzipped ? { gzipped: c.gzipped } : {}),
      });
    });
    if (duplicates) metrics.chunksIn.inc({ outcome: 'duplicate' }, duplicates);
    if (records.length) {
      const stop = metrics.logAppendSeconds.startTimer();
      try {
        await log.append(records);
      } catch (err) {
        if (dedupe) await dedupe.release(written);
        throw err;
      } finally {
        stop();
      }
      metrics.chunksIn.inc({ outcome: 'written' }, records.length);
      metrics.eventsIn.inc(
        { input },
        records.reduce((n, r) => n + r.count, 0),
      );
    }
    if (dedupe && written.length) void dedupe.markDone(written);
  };
}
