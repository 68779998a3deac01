/**
 * A consumer group's reader of the embedded log. It sees the log only
 * through `ReaderSource`: the segments and how far they are durable, a wait
 * for the next append, and the group's committed position.
 *
 * Every poll reads into the same buffer: egress reads the whole log back, and
 * a fresh multi-megabyte buffer per poll was most of the aggregator's
 * external allocation, each one a step towards V8's next full GC. A poll's
 * records are therefore valid until the next poll (the LogReader contract).
 */
import { type Filesystem, TributaryError } from '@tributary/core';
import { LogErrorCode, type LogReader, type StoredRecord } from '../durable-log';
import { decodeBody, scan } from './codec';
import { type Segment, readRange, segmentOf } from './segments';

/** About how much one poll reads. */
export const READ_BYTES = 8 * 1024 * 1024;
const NONE_REVOKED: readonly number[] = Object.freeze([]);

/** What a reader needs of the log. */
export interface ReaderSource {
  readonly fs: Filesystem;
  /** The segments, oldest first. */
  readonly segments: readonly Segment[];
  /** The offset just past the last record written and synced: readers see only below it. */
  durableEnd(): number;
  /** Resolves at the next append made durable, or after `ms`. */
  waitForAppend(ms: number): Promise<void>;
  committed(group: string): number;
  /** Why the group's committed position could not be read at start; null when it could. */
  unreadableCommit(group: string): string | null;
  /** Durably records the group's position; rejects with a RetryableError (TRB_LOG_COMMIT) when the disk refuses. */
  saveCommit(group: string, offset: number): Promise<void>;
}

export class EmbeddedReader implements LogReader {
  private position: number;
  private closed = false;
  private atEnd = false;
  private readonly scratch = Buffer.allocUnsafeSlow(READ_BYTES);

  constructor(
    private readonly log: ReaderSource,
    readonly group: string,
  ) {
    this.position = log.committed(group);
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<StoredRecord[]> {
    if (this.closed) return [];
    const unreadable = this.log.unreadableCommit(this.group);
    if (unreadable) {
      throw new TributaryError(
        LogErrorCode.CommitUnreadable,
        `Consumer group ${this.group} does not read: ${unreadable}. Restore the file with the offset to resume from, or delete it to replay the whole retained log, then restart (docs/operations.md).`,
      );
    }
    let records = await this.read(maxRecords);
    if (records.length === 0 && maxWaitMs > 0) {
      await this.log.waitForAppend(maxWaitMs);
      records = await this.read(maxRecords);
    }
    if (records.length) this.position = records[records.length - 1].offset + 1;
    this.atEnd = this.position >= this.log.durableEnd();
    return records;
  }

  /**
   * Whole records from the position on, from the segment holding it, up to
   * `maxRecords` and about READ_BYTES (so a poll fits the scratch buffer: a
   * range one record past it meant a fresh buffer per poll, and a full GC
   * every few dozen milliseconds). A single larger record gets its own buffer.
   */
  private async read(maxRecords: number): Promise<StoredRecord[]> {
    const offset = this.position;
    const seg = segmentOf(this.log.segments, offset);
    const range = seg && readRange(seg, offset, this.log.durableEnd(), maxRecords, READ_BYTES);
    if (!seg || !range) return [];
    const size = range.end - range.start;
    const data = size <= this.scratch.length ? this.scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    const { fs } = this.log;
    const fd = await fs.open(seg.path, 'r');
    try {
      let got = 0;
      while (got < size) {
        const n = await fs.read(fd, data, got, size - got, range.start + got);
        if (n === 0)
          throw new TributaryError(LogErrorCode.Corrupt, `${seg.path} ends at byte ${range.start + got}, before the records it holds.`);
        got += n;
      }
    } finally {
      await fs.close(fd);
    }
    const { bodies } = scan(data, false);
    return bodies.map((b, i) => ({ ...decodeBody(b), partition: 0, offset: offset + i }));
  }

  caughtUp(): boolean {
    return this.atEnd;
  }

  /** One reader per group owns the whole log: nothing is ever revoked. */
  revoked(): readonly number[] {
    return NONE_REVOKED;
  }

  async commit(records: StoredRecord[]): Promise<void> {
    if (records.length === 0) return;
    let next = 0;
    for (const r of records) next = Math.max(next, r.offset + 1);
    if (next > this.log.committed(this.group)) await this.log.saveCommit(this.group, next);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
