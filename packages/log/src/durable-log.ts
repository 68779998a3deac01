import { Codes, type LogReader, type LogRecord } from '@tributary/core';

/** The records and the reader are core's contracts (pipeline.ts), which egress reads through; every log here implements them. */
export type { LogReader, LogRecord, StoredRecord } from '@tributary/core';

/**
 * The durable log between ingest and egress. One record is one whole chunk
 * (tag, dedupe key, events), never one message per event.
 *
 * Contract:
 * - `append` resolves only when every record is durable (embedded: written
 *   and fdatasynced; Kafka: acknowledged by all in-sync replicas). Rejects
 *   with a retryable error otherwise; nothing is then acked upstream.
 * - `reader(group)` gives a `LogReader` (core): every record at least once,
 *   in order per partition, after the group's last commit.
 */
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
