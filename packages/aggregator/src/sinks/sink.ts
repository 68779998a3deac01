/**
 * What a sink takes from egress. Egress owns reading, encoding, batching
 * into objects, retries and commits (as Fluent Bit's engine and Vector's
 * shared sink stages do); a sink only writes.
 *
 * - An object sink (file, S3) writes whole objects: `put` resolves only when
 *   every object is durably stored under its path. Paths derive from log
 *   positions, so writing the same object again replaces it: a replay after
 *   a crash overwrites and never adds.
 * - A line sink (Firehose) takes NDJSON lines: `put` resolves only when the
 *   destination accepted every line (at-least-once: each line carries a
 *   stable `_id`).
 *
 * Either rejects with a RetryableError (egress backs off and calls `put`
 * again with the same data) or a permanent TributaryError (`retriable:
 * false`: egress dead-letters the data for that sink and goes on). Buffers
 * passed in belong to the sink only until `put` settles.
 */
import type { DeadLetter } from '../egress/encode-job';

export interface SinkObject {
  /** Below the sink's own prefix: `<tag>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first offset>.json.gz`. */
  path: string;
  /** gzip members; written back to back they are one gzip file. */
  body: Uint8Array[];
  events: number;
}

export interface ObjectSink {
  readonly kind: 'objects';
  readonly name: string;
  /** The gzip level its objects are compressed with. */
  readonly gzipLevel: number;
  put(objects: SinkObject[]): Promise<void>;
  close(): Promise<void>;
}

export interface LineBatch {
  /** NDJSON parts; `lineEnds[i]` holds the end of every line of `parts[i]`. */
  parts: Uint8Array[];
  lineEnds: Uint32Array[];
  events: number;
  /** Events egress could not encode; the sink keeps them where it keeps its own rejects. */
  deadLetters: DeadLetter[];
}

export interface LineSink {
  readonly kind: 'lines';
  readonly name: string;
  put(batch: LineBatch): Promise<void>;
  close(): Promise<void>;
}

export type Sink = ObjectSink | LineSink;
