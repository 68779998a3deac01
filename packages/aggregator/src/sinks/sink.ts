/**
 * A sink takes a batch of log records and resolves only when the destination
 * durably accepted all of it. It rejects with a RetryableError (egress tries
 * the same batch again later); records the destination can never accept are
 * dead-lettered with the reason instead of failing the batch.
 * Writing the same batch twice must not duplicate data where the destination
 * allows it (object keys derived from log positions).
 * The records are valid only until `consume` settles (the log reader reuses
 * its read buffer on the next poll): a sink that keeps data longer copies it.
 */
import type { StoredRecord } from '../log/durable-log';

export interface Sink {
  readonly name: string;
  consume(records: StoredRecord[]): Promise<void>;
  close(): Promise<void>;
}
