/**
 * Pure batching for Firehose PutRecordBatch: NDJSON lines → records (one or
 * several whole lines per record) → calls within the service limits. Lines
 * that can never be accepted come back separately with the reason.
 */
import type { LineBatch } from '@tributary/core';
import type { DeadLetterLine } from '../dead-letters';

// Amazon Data Firehose quotas, PutRecordBatch:
// https://docs.aws.amazon.com/firehose/latest/dev/limits.html
export const FIREHOSE_MAX_RECORDS_PER_BATCH = 500;
export const FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024;

export interface Plan {
  /** Each inner array is one PutRecordBatch call; each Uint8Array one Firehose record. */
  calls: Uint8Array[][];
  /** Lines over the record limit, for the dead letters. */
  rejected: DeadLetterLine[];
}

/**
 * `maxRecordBytes` > one line packs several newline-terminated lines into one
 * Firehose record (fewer calls, the same S3 output). Records are views into
 * the batch's parts: no copy.
 */
export function planBatches(batch: Pick<LineBatch, 'parts' | 'lineEnds'>, maxRecordBytes: number): Plan {
  const limit = Math.min(maxRecordBytes, FIREHOSE_MAX_RECORD_BYTES);
  const out: Uint8Array[] = [];
  const rejected: DeadLetterLine[] = [];
  batch.parts.forEach((part, i) => {
    let recordStart = 0;
    let lineStart = 0;
    for (const lineEnd of batch.lineEnds[i]) {
      const bytes = lineEnd - lineStart;
      if (bytes > FIREHOSE_MAX_RECORD_BYTES) {
        if (lineStart > recordStart) out.push(part.subarray(recordStart, lineStart));
        rejected.push({
          line: Buffer.from(part.buffer, part.byteOffset + lineStart, bytes - 1).toString(),
          reason: `event of ${bytes} bytes exceeds the Firehose record limit of ${FIREHOSE_MAX_RECORD_BYTES} bytes`,
        });
        recordStart = lineEnd;
        lineStart = lineEnd;
        continue;
      }
      if (lineEnd - recordStart > limit && lineStart > recordStart) {
        out.push(part.subarray(recordStart, lineStart));
        recordStart = lineStart;
      }
      lineStart = lineEnd;
    }
    if (lineStart > recordStart) out.push(part.subarray(recordStart, lineStart));
  });
  return { calls: splitCalls(out), rejected };
}

function splitCalls(records: Uint8Array[]): Uint8Array[][] {
  const calls: Uint8Array[][] = [];
  let call: Uint8Array[] = [];
  let bytes = 0;
  for (const r of records) {
    if (call.length === FIREHOSE_MAX_RECORDS_PER_BATCH || bytes + r.length > FIREHOSE_MAX_BATCH_BYTES) {
      calls.push(call);
      call = [];
      bytes = 0;
    }
    call.push(r);
    bytes += r.length;
  }
  if (call.length) calls.push(call);
  return calls;
}
