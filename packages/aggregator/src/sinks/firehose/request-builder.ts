/**
 * Pure batching for Firehose PutRecordBatch: NDJSON lines → records (one or
 * several lines per record) → calls within the service limits. Lines that can
 * never be accepted come back separately with the reason.
 */
import type { StoredRecord } from '../../log/durable-log';
import { type FieldNames, toLines } from '../ndjson';

// Amazon Data Firehose quotas, PutRecordBatch:
// https://docs.aws.amazon.com/firehose/latest/dev/limits.html
export const FIREHOSE_MAX_RECORDS_PER_BATCH = 500;
export const FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024;

export interface Rejected {
  line: string;
  reason: string;
}

export interface Plan {
  /** Each inner array is one PutRecordBatch call; each Buffer one Firehose record. */
  calls: Buffer[][];
  rejected: Rejected[];
  events: number;
}

/**
 * `maxRecordBytes` > one line packs several newline-terminated lines into one
 * Firehose record (fewer calls, the same S3 output).
 */
export function planBatches(records: StoredRecord[], fields: FieldNames, maxRecordBytes: number): Plan {
  const limit = Math.min(maxRecordBytes, FIREHOSE_MAX_RECORD_BYTES);
  const out: Buffer[] = [];
  const rejected: Rejected[] = [];
  let current: Buffer[] = [];
  let currentBytes = 0;
  let events = 0;
  const cut = () => {
    if (current.length) out.push(Buffer.concat(current, currentBytes));
    current = [];
    currentBytes = 0;
  };
  for (const r of records) {
    for (const line of toLines(r, fields)) {
      const bytes = Buffer.from(`${line.json}\n`);
      if (bytes.length > FIREHOSE_MAX_RECORD_BYTES) {
        rejected.push({
          line: line.json,
          reason: `event of ${bytes.length} bytes exceeds the Firehose record limit of ${FIREHOSE_MAX_RECORD_BYTES} bytes`,
        });
        continue;
      }
      events++;
      if (currentBytes + bytes.length > limit) cut();
      current.push(bytes);
      currentBytes += bytes.length;
    }
  }
  cut();
  return { calls: splitCalls(out), rejected, events };
}

function splitCalls(records: Buffer[]): Buffer[][] {
  const calls: Buffer[][] = [];
  let call: Buffer[] = [];
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
