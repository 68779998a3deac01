/**
 * The pipeline's contracts: what flows between stages and the shape of each
 * kind of part. Every package above core speaks these types; core imports
 * no workspace package, so they are structural (a protocol package's
 * `ForwardChunk` satisfies `EventChunk` without core knowing it).
 *
 *   Input ──consume(chunks)──▶ buffer / log ──▶ egress ──put(objects | lines)──▶ Sink
 */
import type { AddressInfo } from 'node:net';

/** Events of one tag as every stage passes them: msgpack `[time, record]` entries back to back. */
export interface EventChunk {
  readonly tag: string;
  /** Concatenated msgpack `[time, record]` entries, uncompressed. */
  readonly entries: Uint8Array;
  /** Number of events in `entries`. */
  readonly count: number;
  /** The sender's chunk id, when it asked for an ack: the dedupe key. */
  readonly chunkId?: string;
}

/**
 * The next stage. Resolved means durably accepted downstream; only then does
 * an input ack. A rejection is retryable (a `RetryableError`): the input
 * refuses and the sender sends the same data again later.
 */
export type Consume<C extends EventChunk = EventChunk> = (chunks: C[]) => Promise<void>;

/** A source of chunks (forward, HTTP; file tailing next). A role holds an `Input[]` and never sees the server behind one. */
export interface Input<C extends EventChunk = EventChunk> {
  /** The input's kind (`forward`, `http`): the `input` label of its metrics. */
  readonly name: string;
  /** Listens, handing every admitted batch to `consume`. Resolves once it listens; rejects if it cannot (port in use). */
  start(consume: Consume<C>): Promise<void>;
  /**
   * Stops taking new work, lets what is in flight finish (and be acked) for
   * up to `graceMs`, then cuts the connections left. Resolves once closed.
   */
  stop(graceMs: number): Promise<void>;
  /** Where it listens; only after `start` resolved. */
  readonly address: AddressInfo;
}

/** An event egress could not encode, kept with its reason instead of blocking the rest. */
export interface DeadLetter {
  tag: string;
  id: string;
  reason: string;
  /** The event's msgpack bytes, base64. */
  raw: string;
}

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
