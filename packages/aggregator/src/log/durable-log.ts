import { Codes } from '@tributary/core';
/**
 * The durable log between ingest and egress. One record is one whole chunk
 * (tag, dedupe key, events), never one message per event.
 *
 * Contract:
 * - `append` resolves only when every record is durable (embedded: written
 *   and fdatasynced; Kafka: acknowledged by all in-sync replicas). Rejects
 *   with a retryable error otherwise; nothing is then acked upstream.
 * - A reader of a consumer group sees every record at least once, in order per
 *   partition, starting after the group's last commit. `commit` is called only
 *   after every sink confirmed; a crash replays from the last commit.
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
}

export interface StoredRecord extends LogRecord {
  partition: number;
  offset: number;
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
   * True when the last poll left nothing readable behind it: it reached the
   * end of what the log held (of `partition`, or of every assigned partition
   * when none is named; a partition no longer assigned counts as read). Egress
   * closes a partly filled object on age only when this holds, so a replay
   * after a crash (which reads at least as far) never cuts an object shorter
   * than the one it overwrites.
   */
  caughtUp(partition?: number): boolean;
  /**
   * Commits the position just past every given record (per partition).
   * Egress may poll several times before it commits; commits come in poll
   * order, and a commit covers everything polled before the records given.
   */
  commit(records: StoredRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface DurableLog {
  readonly kind: 'embedded' | 'kafka';
  start(): Promise<void>;
  append(records: LogRecord[]): Promise<void>;
  reader(group: string): Promise<LogReader>;
  /**
   * Dedupe keys of the newest records the log retains, oldest first, at most
   * `max`: what dedupe re-marks as done when Redis lost its memory. The
   * embedded log answers with the keys it held at start (its node adds its
   * own appends since); Kafka reads the tail of every partition, so a
   * cluster rebuilds from what every node wrote, the dead ones included.
   */
  recentKeys(max: number): Promise<string[]>;
  /**
   * Dedupe keys of this node's own records the log held when it started,
   * oldest first (valid after `start`): what the node's dedupe store marks
   * done before its first claim. Absent on a log shared by every node
   * (Kafka), where a node cannot tell its own records apart.
   */
  recoveredKeys?(): readonly string[];
  /**
   * Bytes appended that some egress group has not committed yet: how far
   * egress is behind. The embedded log counts them; Kafka answers 0 (its
   * retention is the buffer, sized by the cluster, and lag is watched there).
   */
  backlogBytes(): number;
  /** Resolves at the next commit of any group, or after `ms`. */
  waitForCommit(ms: number): Promise<void>;
  /** Null when healthy; otherwise why the log cannot take appends (for /readyz). */
  unavailable(): string | null;
  close(): Promise<void>;
}

export const LogErrorCode = {
  Append: Codes.TRB_LOG_APPEND,
  Closed: Codes.TRB_LOG_CLOSED,
  Corrupt: Codes.TRB_LOG_CORRUPT,
  /** Saving a consumer group's position failed (disk full, I/O error); retried. */
  Commit: Codes.TRB_LOG_COMMIT,
  /** A consumer group's saved position cannot be read; its reader stops until an operator fixes it. */
  CommitUnreadable: Codes.TRB_LOG_COMMIT_UNREADABLE,
  /** A record the log's format cannot hold (e.g. a tag over 65,535 bytes); permanent. */
  Unencodable: Codes.TRB_LOG_UNENCODABLE,
} as const;
