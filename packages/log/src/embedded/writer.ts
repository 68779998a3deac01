/**
 * The embedded log's group-commit writer and syncer.
 *
 * Every append waiting while a write is in progress goes out in the next
 * single write (one writev), and one fdatasync covers every group written
 * since the last; the next group's write overlaps the previous one's sync, so
 * the disk's write and flush overlap instead of alternating. An append
 * resolves, and its records become readable (`durableEnd`, `onDurable`),
 * only once synced.
 *
 * Failures: a failed write is cut off again (ftruncate to the last good byte)
 * so later records never follow garbage, its appends are rejected, and the
 * next append tries again. A failed segment creation rejects the waiting
 * appends; the next append tries again. A failed fdatasync is not retried
 * (the kernel may have dropped the dirty pages and a second call could report
 * success falsely): the writer is `broken` and refuses appends until the node
 * is restarted and recovers the files. Every refusal is a RetryableError
 * (TRB_LOG_APPEND), so nothing is acked upstream.
 */
import { type Filesystem, type Logger, RetryableError, writevAll } from '@tributary/core';
import { LogErrorCode, type LogRecord } from '../durable-log';
import { encodeRecord } from './codec';
import { type Segment, newSegment } from './segments';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export interface WriterOptions {
  fs: Filesystem;
  /** The segments directory. */
  dir: string;
  segmentBytes: number;
  /** The log's segments, oldest first (recovered); the writer appends to the last and adds new ones. */
  segments: Segment[];
  logger: Logger;
  /** Called each time records become durable (`durableEnd` moved). */
  onDurable(): void;
}

export class GroupCommitWriter {
  private readonly fs: Filesystem;
  private readonly segments: Segment[];
  private fd = -1;
  private nextOffset: number;
  /** Offsets below this are written and synced: what readers may see. */
  private durableOffset: number;
  /** Appends waiting for the writer. */
  private queue: Array<{ records: LogRecord[] } & Waiter> = [];
  /** A group is being written. */
  private writing = false;
  /** Groups written and waiting for the next fdatasync, oldest first. */
  private unsynced: Array<{ items: Waiter[]; fd: number; end: number }> = [];
  private syncing = false;
  /** Descriptors the sync in progress covers. */
  private syncingFds = new Set<number>();
  /** The current segment is full: the next group goes to a new one. */
  private needsRoll = false;
  private rolling = false;
  /** Descriptors of rolled segments, closed once no sync needs them (closeRetired). */
  private readonly retired = new Set<number>();
  /** Why the writer can no longer promise durability; appends are refused until restart. */
  private brokenReason: string | null = null;
  /** The last write or segment creation failed (cleared by the next successful sync). */
  private failure: string | null = null;

  constructor(private readonly options: WriterOptions) {
    this.fs = options.fs;
    this.segments = options.segments;
    const tail = this.segments[this.segments.length - 1];
    this.nextOffset = tail ? tail.base + tail.records : 0;
    this.durableOffset = this.nextOffset;
  }

  /** Opens the last segment for appends, or a new one when there is none or it is full (nothing else runs yet). */
  async open(): Promise<void> {
    const tail = this.segments[this.segments.length - 1];
    if (tail && tail.bytes < this.options.segmentBytes) {
      this.fd = await this.fs.open(tail.path, 'a');
      return;
    }
    const seg = newSegment(this.options.dir, this.nextOffset);
    this.fd = await this.fs.open(seg.path, 'a');
    this.segments.push(seg);
  }

  /** The offset the next appended record gets. */
  get endOffset(): number {
    return this.nextOffset;
  }

  /** The offset just past the last record written and synced. */
  get durableEnd(): number {
    return this.durableOffset;
  }

  /** Null when appends are taken; otherwise why they fail or are refused. */
  problem(): string | null {
    return this.brokenReason ?? this.failure;
  }

  get broken(): string | null {
    return this.brokenReason;
  }

  /** Nothing queued, being written, synced or rolled. */
  idle(): boolean {
    return !this.writing && !this.syncing && !this.rolling && this.queue.length === 0 && this.unsynced.length === 0;
  }

  /** Resolves once every record is written and synced. `records` must be encodable and the writer not broken. */
  append(records: LogRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      this.flush();
    });
  }

  /** Takes every queued append as one group and writes it, while the previous group may still be syncing. */
  private flush(): void {
    if (this.writing || this.rolling || this.queue.length === 0) return;
    if (this.needsRoll) {
      this.roll();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.writing = true;
    const buffers: Buffer[] = [];
    const sizes: number[] = [];
    for (const item of batch) for (const r of item.records) sizes.push(encodeRecord(r, buffers));
    const seg = this.segments[this.segments.length - 1];
    const fd = this.fd;
    writevAll(this.fs, fd, buffers)
      .then(
        () => this.written(batch, seg, fd, sizes),
        (err: Error) => this.writeFailed(batch, seg, fd, err),
      )
      .catch((bug: Error) => this.halt(bug));
  }

  private written(batch: Waiter[], seg: Segment, fd: number, sizes: number[]): void {
    this.writing = false;
    for (const size of sizes) {
      seg.positions.push(seg.bytes);
      seg.bytes += size;
    }
    seg.records += sizes.length;
    this.nextOffset += sizes.length;
    this.unsynced.push({ items: batch, fd, end: this.nextOffset });
    if (seg.bytes >= this.options.segmentBytes) this.needsRoll = true;
    this.sync();
    this.flush();
  }

  private writeFailed(batch: Waiter[], seg: Segment, fd: number, err: Error): void {
    this.writing = false;
    try {
      this.fs.ftruncateSync(fd, seg.bytes);
      this.failed(`append failed: ${err.message}`);
    } catch (cutErr) {
      this.break(`a failed append could not be cut off (${(cutErr as Error).message}); restart the node once the disk is fixed`);
    }
    const e = new RetryableError(LogErrorCode.Append, `Appending to the embedded log failed: ${err.message}.`, err);
    for (const item of batch) item.reject(e);
    this.flush();
  }

  /**
   * Starts a new segment while appends run: the file is created off the event
   * loop (a create can wait on the filesystem journal behind a sync); the old
   * descriptor is closed once its last write is synced. Appends wait for it;
   * if the create fails they are refused and the next append tries again.
   */
  private roll(): void {
    this.rolling = true;
    const seg = newSegment(this.options.dir, this.nextOffset);
    this.fs
      .open(seg.path, 'a')
      .then(
        (fd) => {
          this.rolling = false;
          this.retired.add(this.fd);
          this.needsRoll = false;
          this.fd = fd;
          this.segments.push(seg);
          this.closeRetired();
          this.flush();
        },
        (err: Error) => {
          this.rolling = false;
          this.failed(`creating a segment failed: ${err.message}`);
          const e = new RetryableError(LogErrorCode.Append, `Creating an embedded log segment failed: ${err.message}.`, err);
          for (const item of this.queue.splice(0)) item.reject(e);
        },
      )
      .catch((bug: Error) => this.halt(bug));
  }

  /**
   * One fdatasync per descriptor covers every group written since the last
   * sync; only then are their appends resolved and their records durable.
   */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    if (this.brokenReason) {
      this.rejectWaiting(new RetryableError(LogErrorCode.Append, `The embedded log refuses appends: ${this.brokenReason}.`));
      return;
    }
    const groups = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    const fds = [...new Set(groups.map((g) => g.fd))];
    this.syncingFds = new Set(fds);
    let left = fds.length;
    let failed: Error | null = null;
    const done = () => {
      if (--left > 0) return;
      this.syncing = false;
      this.syncingFds = new Set();
      this.closeRetired();
      if (failed) {
        this.break(`fdatasync failed (${failed.message}); restart the node once the disk is fixed`);
        const e = new RetryableError(LogErrorCode.Append, `The embedded log could not be made durable: ${failed.message}.`, failed);
        for (const g of groups) for (const item of g.items) item.reject(e);
        this.rejectWaiting(e);
        return;
      }
      if (this.failure) {
        this.options.logger.info('The embedded log takes appends again.');
        this.failure = null;
      }
      this.durableOffset = groups[groups.length - 1].end;
      for (const g of groups) for (const item of g.items) item.resolve();
      this.options.onDurable();
      this.sync();
    };
    for (const fd of fds) {
      this.fs
        .fdatasync(fd)
        .then(done, (err: Error) => {
          failed ??= err;
          done();
        })
        .catch((bug: Error) => this.halt(bug));
    }
  }

  /** Closes the rolled segments' descriptors that no written-but-unsynced group and no running sync needs. */
  private closeRetired(): void {
    for (const fd of this.retired) {
      if (this.syncingFds.has(fd) || this.unsynced.some((g) => g.fd === fd)) continue;
      this.retired.delete(fd);
      this.fs.close(fd).catch((err: Error) => {
        // Its writes are synced: nothing is lost, but a descriptor may leak.
        this.options.logger.warn({ code: LogErrorCode.Append, err }, `Closing a rolled embedded log segment failed: ${err.message}.`);
      });
    }
  }

  /** Rejects every append not yet written or not yet synced. */
  private rejectWaiting(e: Error): void {
    for (const item of this.queue.splice(0)) item.reject(e);
    const unsynced = this.unsynced;
    this.unsynced = [];
    for (const g of unsynced) for (const item of g.items) item.reject(e);
  }

  private failed(reason: string): void {
    if (!this.failure) {
      this.options.logger.warn(
        { code: LogErrorCode.Append },
        `The embedded log refuses appends for now: ${reason}; the next append tries again.`,
      );
    }
    this.failure = reason;
  }

  private break(reason: string): void {
    if (!this.brokenReason) this.options.logger.error({ code: LogErrorCode.Append }, `The embedded log refuses appends: ${reason}.`);
    this.brokenReason ??= reason;
  }

  /** A bug in a completion handler: stop taking appends rather than continue in an unknown state. */
  private halt(bug: Error): void {
    this.writing = false;
    this.syncing = false;
    this.rolling = false;
    this.break(`an internal error stopped the writer (${bug.message})`);
    this.rejectWaiting(new RetryableError(LogErrorCode.Append, `The embedded log refuses appends: ${this.brokenReason}.`, bug));
  }

  /** Closes every descriptor; call once `idle()`. */
  async close(): Promise<void> {
    for (const fd of this.retired) await this.fs.close(fd);
    this.retired.clear();
    if (this.fd >= 0) await this.fs.close(this.fd);
    this.fd = -1;
  }
}
