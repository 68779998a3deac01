/**
 * The partial retry every batch API needs (Firehose PutRecordBatch, and next
 * OpenSearch `_bulk` or Loki pushes): send the records, then resend only the
 * ones the destination refused, with full-jitter backoff, until all are
 * accepted or the attempts run out. A send that throws is the sink's to
 * classify: it returns every record as failed to retry them (throttling, a
 * dropped connection) or throws to stop at once (a refusal no retry passes).
 */
import { type ErrorCode, RetryableError, backoffDelay } from '@tributary/core';

export interface SendOutcome<T> {
  /** The records the destination did not accept, in the order sent. */
  failed: T[];
  /** The whole call was throttled (for the sink's counters). */
  throttled?: boolean;
}

export interface PartialRetryOptions {
  maxAttempts: number;
  backoff: { initialMs: number; maxMs: number };
  /** The code and the destination named in the error when records still fail after the last attempt. */
  code: ErrorCode;
  destination: string;
  /** After every call: what it sent and what failed (for metrics). */
  onCall?(sent: number, failed: number, throttled: boolean): void;
  sleep?(ms: number): Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once every record was accepted; rejects with a RetryableError when some still fail after `maxAttempts` calls. */
export async function sendWithPartialRetry<T>(
  records: T[],
  send: (records: T[]) => Promise<SendOutcome<T>>,
  o: PartialRetryOptions,
): Promise<void> {
  let pending = records;
  for (let attempt = 0; ; attempt++) {
    const { failed, throttled = false } = await send(pending);
    o.onCall?.(pending.length, failed.length, throttled);
    if (failed.length === 0) return;
    if (attempt + 1 >= o.maxAttempts) {
      throw new RetryableError(
        o.code,
        `${failed.length} of ${records.length} records still failed after ${o.maxAttempts} attempts to ${o.destination}; the batch will be retried.`,
      );
    }
    pending = failed;
    await (o.sleep ?? defaultSleep)(backoffDelay(attempt, o.backoff));
  }
}
