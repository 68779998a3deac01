/**
 * aws_firehose sink: NDJSON lines egress encoded → PutRecordBatch within the
 * service limits. On a partial failure only the failed records are resent
 * (the shared `sendWithPartialRetry`); throttling and failures back off
 * (full jitter) and retry up to `maxAttempts`, then the batch is rejected
 * as retryable and egress tries it again (Firehose has no idempotency key:
 * at-least-once, every line carries a stable `_id`). Events that can never be
 * accepted (and events egress could not encode) go to the dead-letter
 * directory with the reason, before any record is sent: a dead-letter write
 * that fails rejects the batch as retryable, so nothing is lost. Without a
 * dead-letter directory they are counted and logged as dropped.
 */
import { type FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { Codes, type Logger, RetryableError } from '@tributary/core';
import type { LineBatch, LineSink } from '@tributary/core';
import { runConcurrently } from '../concurrent';
import { DeadLetterFile, type DeadLetterLine } from '../dead-letters';
import { type SendOutcome, sendWithPartialRetry } from '../partial-retry';
import type { SinkStats } from '../spec';
import { planBatches } from './request-builder';

/** PutRecordBatch calls in flight at once per sink (a window is many calls). */
const CONCURRENT_CALLS = 4;

export interface FirehoseSinkOptions {
  name: string;
  client: FirehoseClient;
  deliveryStream: string;
  logger: Logger;
  /** Bytes of NDJSON packed into one Firehose record (one line when 0). */
  maxRecordBytes: number;
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number };
  deadLetterPath: string | null;
  onStats?(s: SinkStats): void;
}

export class FirehoseSink implements LineSink {
  /** Batches whose dead letters are written (a retried put must not append them again). */
  private readonly deadLettered = new WeakSet<LineBatch>();
  private readonly deadLetters: DeadLetterFile | null;
  readonly kind = 'lines' as const;
  readonly name: string;

  constructor(private readonly options: FirehoseSinkOptions) {
    this.name = options.name;
    this.deadLetters = options.deadLetterPath ? new DeadLetterFile(options.deadLetterPath, options.name) : null;
  }

  async put(batch: LineBatch): Promise<void> {
    const o = this.options;
    const plan = planBatches(batch, o.maxRecordBytes || 1);
    const rejected = [
      ...plan.rejected,
      ...batch.deadLetters.map((d) => ({ line: JSON.stringify({ _id: d.id, _tag: d.tag, msgpack_base64: d.raw }), reason: d.reason })),
    ];
    // Egress retries a failed put with the same batch: its dead letters are written once.
    if (rejected.length && !this.deadLettered.has(batch)) {
      await this.deadLetter(rejected, plan.rejected.length);
      this.deadLettered.add(batch);
    }
    // A call that gives up stops the others starting, and the put settles once none runs: egress resends the batch.
    await runConcurrently(plan.calls, CONCURRENT_CALLS, (call) => this.putWithRetries(call));
  }

  private putWithRetries(call: Uint8Array[]): Promise<void> {
    const o = this.options;
    return sendWithPartialRetry(call, (records) => this.putRecordBatch(records), {
      maxAttempts: o.maxAttempts,
      backoff: o.backoff,
      code: Codes.TRB_SINK_FIREHOSE,
      destination: `Firehose stream ${o.deliveryStream}`,
      onCall: (sent, failed, throttled) =>
        o.onStats?.({ calls: 1, records: sent - failed, failedRecords: failed, throttled: throttled ? 1 : 0, deadLetters: 0 }),
    });
  }

  /** One PutRecordBatch: the records Firehose refused, all of them when throttled; throws on a refusal no retry passes. */
  private async putRecordBatch(records: Uint8Array[]): Promise<SendOutcome<Uint8Array>> {
    const o = this.options;
    try {
      const res = await o.client.send(
        new PutRecordBatchCommand({ DeliveryStreamName: o.deliveryStream, Records: records.map((Data) => ({ Data })) }),
      );
      const failed = (res.RequestResponses ?? []).flatMap((r, i) => (r.ErrorCode ? [records[i]] : []));
      // no per-record detail: resend all
      return { failed: (res.FailedPutCount ?? 0) > 0 && failed.length === 0 ? records : failed };
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ?? 0;
      const throttling = /Throttl|ServiceUnavailable|LimitExceeded/.test(e.name);
      // A refusal that is not throttling (no such stream, no permission) will not pass by retrying records.
      if (status >= 400 && status < 500 && !throttling) {
        throw new RetryableError(
          Codes.TRB_SINK_FIREHOSE,
          `PutRecordBatch to ${o.deliveryStream} was refused: ${e.name}: ${e.message}.`,
          err,
        );
      }
      return { failed: records, throttled: true };
    }
  }

  /**
   * `own` of `rejected` are this sink's own rejects (over Firehose's record
   * limit) and are counted here; the rest egress could not encode and
   * already counted.
   */
  private async deadLetter(rejected: DeadLetterLine[], own: number): Promise<void> {
    const o = this.options;
    const file = this.deadLetters;
    if (!file) {
      o.onStats?.({ calls: 0, records: 0, failedRecords: 0, throttled: 0, deadLetters: own });
      o.logger.warn(
        { code: Codes.TRB_SINK_DEAD_LETTER, sink: o.name, events: rejected.length },
        `Sink ${o.name} dropped ${rejected.length} events it can never deliver (no dead_letter_path is set); the first: ${rejected[0].reason}.`,
      );
      return;
    }
    await file.append(rejected);
    o.onStats?.({ calls: 0, records: 0, failedRecords: 0, throttled: 0, deadLetters: own });
    o.logger.warn(
      { code: Codes.TRB_SINK_DEAD_LETTER, sink: o.name, events: rejected.length, path: file.file },
      `Sink ${o.name} wrote ${rejected.length} events it can never deliver to ${file.file}; the first: ${rejected[0].reason}.`,
    );
  }

  async close(): Promise<void> {
    this.options.client.destroy();
  }
}
