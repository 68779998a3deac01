/**
 * The pipeline's contracts: what flows between stages and the shape of each
 * kind of part. Every package above core speaks these types; core imports
 * no workspace package, so they are structural (a protocol package's
 * `ForwardChunk` satisfies `EventChunk` without core knowing it).
 *
 *   Input ──consume(chunks)──▶ buffer / log ──LogReader──▶ egress ──put(objects | lines)──▶ Sink
 */
import type { AddressInfo } from 'node:net';
import { gzipInflatedSize } from './gzip';

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

/** A source of chunks (forward, HTTP, tail). A role holds an `Input[]` and never sees the server behind one. */
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

/**
 * The durable log's side that egress reads (the log package implements it;
 * sinks read through it without importing the log). One record is one whole
 * chunk (tag, dedupe key, events), never one message per event.
 *
 * A reader of a consumer group sees every record at least once, in order per
 * partition, starting after the group's last commit. `commit` is called only
 * after every sink confirmed; a crash replays from the last commit.
 */
export interface LogRecord {
  tag: string;
  /** Dedupe key: the sender's chunk id plus a hash of the entries. */
  key: string;
  /** Number of events in `entries`. */
  count: number;
  /** Concatenated msgpack `[time, record]` entries. */
  entries: Buffer;
  /** crc32 of `entries`, when the caller already computed it (the dedupe key does). */
  entriesCrc?: number;
  /**
   * `entries` gzipped (one or more gzip members that inflate to exactly
   * `entries`). On append: set when the chunk arrived so
   * (CompressedPackedForward), beside `entries`; a log that stores values
   * compressed keeps these bytes instead of compressing again. On a
   * `StoredRecord`: see there.
   */
  gzipped?: Buffer;
}

export interface StoredRecord extends LogRecord {
  partition: number;
  offset: number;
  /**
   * When the log appended the record (ms since the epoch, the log's clock),
   * for a log that stores it (Kafka: the broker's LogAppendTime). Stored with
   * the record, so every reader of the partition, a replay included, sees the
   * same value: egress cuts objects on age from it, not from when it read them.
   */
  appendedAt?: number;
  /**
   * Set when the log holds the record but cannot read its entries (a stored
   * value that does not decode): why, as a sentence. `entries` then holds the
   * stored bytes as they are and `count` the count stored with them; egress
   * sends the record to dead letters whole instead of reading its events.
   */
  unreadable?: string;
  /**
   * Set by a log that stores entries gzipped (Kafka) and hands them on so:
   * `entries` is then empty and these bytes inflate to the record's entries.
   * Whoever reads the events inflates them (egress does, on its encoder
   * threads); sizes are counted with `entriesBytes`.
   */
  gzipped?: Buffer;
}

/**
 * A record's entries bytes, inflated: `entries.length`, or for a stored
 * record that carries them gzipped, the size its gzip trailer gives (exact
 * for one member; the same figure on every read of the record, which is what
 * egress's cuts on size need).
 */
export function entriesBytes(r: LogRecord): number {
  return r.gzipped && r.entries.length === 0 ? gzipInflatedSize(r.gzipped) : r.entries.length;
}

export interface LogReader {
  /**
   * Up to `maxRecords` records after the last polled position; waits up to
   * `maxWaitMs` for one. The records (their `entries` buffers included) are
   * valid until the next `poll`: a reader may reuse its read buffer, so a sink
   * must not keep them past its `consume`.
   */
  poll(maxRecords: number, maxWaitMs: number): Promise<StoredRecord[]>;
  /**
   * The partitions revoked from this reader (a consumer group rebalance)
   * since the poll before the last one, taken by the last poll together with
   * its records. Whatever was polled of them and is not committed is read
   * again from the group's last commit: by this reader if a partition comes
   * back (its records in the last poll, if any, already start there), else
   * by its new owner. So a caller drops what it holds of them uncommitted and
   * writes nothing of it. Empty for a log without rebalances; valid until the
   * next poll.
   */
  revoked(): readonly number[];
  /**
   * True when the last poll left nothing readable behind it: it reached the
   * end of what the log held (of `partition`, or of every assigned partition
   * when none is named; a partition no longer assigned is never caught up:
   * this reader does not read it to its end). Egress closes a partly filled
   * object on age only when this holds, so a replay after a crash (which
   * reads at least as far) never cuts an object shorter than the one it
   * overwrites. A `poll` waiting for records returns early when this may
   * have changed, so a caller waiting for it polls rather than spins.
   * With `since` (ms, this node's clock), the end must have been seen at
   * that time or later (a reader that last saw it earlier looks again in the
   * background, and a poll returns when it has).
   */
  caughtUp(partition?: number, since?: number): boolean;
  /**
   * Commits the position just past every given record (per partition).
   * Egress may poll several times before it commits; commits come in poll
   * order, and a commit covers everything polled before the records given.
   */
  commit(records: StoredRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Why egress could not encode an event, as a bounded metric label: `shape`
 * (not a `[time, record]` entry, no valid time, the record not a map),
 * `depth` (nested too deep to write), `malformed` (bytes that are not
 * msgpack, or cut short), `encoder` (the encoder failed on its whole chunk).
 */
export type DeadLetterKind = 'shape' | 'depth' | 'malformed' | 'encoder';

/** Every `DeadLetterKind`, in the order metrics list them. */
export const DEAD_LETTER_KINDS: readonly DeadLetterKind[] = Object.freeze(['shape', 'depth', 'malformed', 'encoder']);

/** An event egress could not encode, kept with its reason instead of blocking the rest. */
export interface DeadLetter {
  tag: string;
  id: string;
  kind: DeadLetterKind;
  /** The sentence saying what was wrong, for the dead-letter line (free text: never a label). */
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

/** What an event filter did since its counts were last taken: per configured filter, and entries it could not read. */
export interface EventFilterCounts {
  dropped: number[];
  failed: number[];
  unreadable: number;
}

/**
 * Filters egress applies to a chunk's events before it encodes them (the
 * filters package implements it; egress runs it without importing it).
 * Deterministic: the same entries give the same kept events and bytes, so a
 * replay writes what the first run wrote.
 */
export interface EventFilter {
  /**
   * The kept events of `entries[start, end)` (a chunk of `tag`), back to
   * back, and each one's index in the chunk; null when no filter applies to
   * `tag` (the entries are used as they are).
   */
  run(tag: string, entries: Buffer, start: number, end: number): { entries: Buffer; indexes: readonly number[] } | null;
  /** The counts since the last call, reset. */
  takeCounts(): EventFilterCounts;
}

/**
 * How an encoder thread makes the event filter: functions cannot cross
 * threads, so each loads `module` (an absolute path or package name) and
 * calls its `createEventFilter(options)` export.
 */
export interface EventFilterModule {
  module: string;
  options: unknown;
}
