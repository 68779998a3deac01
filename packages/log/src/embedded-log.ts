/**
 * Embedded disk log: the single-node durable log, with no servers.
 *
 *   dir/segments/<base offset, 20 digits>.log   append-only segments (embedded/segments.ts, format in embedded/codec.ts)
 *   dir/consumers/<group>.json                  committed offset per group (embedded/offset-store.ts)
 *
 * One partition; the offset is the record's index in the log. Appends are
 * group-committed (embedded/writer.ts): an append resolves, and its records
 * become readable, only once written and fdatasynced. On start the last
 * segment's torn tail is cut off. Retention (embedded/retention.ts) deletes
 * whole segments once every consumer group has committed past them and they
 * are over the size or age limit. Readers (embedded/reader.ts) see the log
 * through a narrow interface.
 *
 * All file I/O goes through `options.fs` (default: the real filesystem), so
 * tests inject EIO, ENOSPC and fdatasync failures on real files.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { type Filesystem, type Logger, RetryableError, TributaryError, realFilesystem, silentLogger } from '@tributary/core';
import { type DurableLog, LogErrorCode, type LogReader, type LogRecord } from './durable-log';
import { unencodable } from './embedded/codec';
import { OffsetStore } from './embedded/offset-store';
import { EmbeddedReader, type ReaderSource } from './embedded/reader';
import { segmentsToDelete } from './embedded/retention';
import { type Segment, bytesFrom, recoverSegments } from './embedded/segments';
import { GroupCommitWriter } from './embedded/writer';

export interface EmbeddedLogOptions {
  path: string;
  segmentBytes: number;
  retentionBytes: number;
  retentionMs: number;
  /** Where the files are read and written; the real filesystem when absent. */
  fs?: Filesystem;
  /** Failure and recovery lines (the append path's refusals are counted by the inputs, by code). */
  logger?: Logger;
}

export class EmbeddedLog implements DurableLog {
  readonly kind = 'embedded' as const;
  private readonly fs: Filesystem;
  private readonly logger: Logger;
  private readonly segments: Segment[] = [];
  private writer: GroupCommitWriter | null = null;
  private readonly offsets: OffsetStore;
  private closed = false;
  /** "append" when records become readable, "commit" when a group saved its position. */
  private readonly events = new EventEmitter();
  private readonly readers = new Set<EmbeddedReader>();
  private keysAtStart: string[] = [];
  /** What readers see of the log. */
  private readonly source: ReaderSource;

  constructor(private readonly options: EmbeddedLogOptions) {
    this.fs = options.fs ?? realFilesystem;
    this.logger = options.logger ?? silentLogger;
    this.offsets = new OffsetStore(this.fs, join(options.path, 'consumers'));
    this.events.setMaxListeners(0);
    this.source = {
      fs: this.fs,
      segments: this.segments,
      durableEnd: () => this.readableEnd(),
      waitForAppend: (ms) => this.next('append', ms),
      committed: (group) => this.offsets.committed(group),
      unreadableCommit: (group) => this.offsets.unreadable(group),
      saveCommit: (group, offset) => this.saveCommit(group, offset),
    };
  }

  async start(): Promise<void> {
    const segDir = join(this.options.path, 'segments');
    await this.fs.mkdir(segDir);
    await this.fs.mkdir(join(this.options.path, 'consumers'));
    const { segments, keys } = await recoverSegments(this.fs, segDir);
    this.segments.push(...segments);
    this.keysAtStart = keys;
    const writer = new GroupCommitWriter({
      fs: this.fs,
      dir: segDir,
      segmentBytes: this.options.segmentBytes,
      segments: this.segments,
      logger: this.logger,
      onDurable: () => this.events.emit('append'),
    });
    await this.offsets.load(writer.endOffset);
    await writer.open();
    this.writer = writer;
  }

  /** The offset the next appended record gets. */
  get endOffset(): number {
    return this.writer?.endOffset ?? 0;
  }

  /** The offset just past the last record a reader can see (written and synced). */
  readableEnd(): number {
    return this.writer?.durableEnd ?? 0;
  }

  unavailable(): string | null {
    if (this.closed) return 'closed';
    return this.writer ? this.writer.problem() : 'not started';
  }

  append(records: LogRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new RetryableError(LogErrorCode.Closed, 'The embedded log is closed.'));
    const writer = this.writer;
    if (!writer) return Promise.reject(new RetryableError(LogErrorCode.Closed, 'The embedded log is not started.'));
    if (writer.broken)
      return Promise.reject(new RetryableError(LogErrorCode.Append, `The embedded log refuses appends: ${writer.broken}.`));
    if (records.length === 0) return Promise.resolve();
    for (const r of records) {
      const why = unencodable(r);
      // Permanent: the same record can never be written; the writer never sees it, so it cannot throw there.
      if (why)
        return Promise.reject(new TributaryError(LogErrorCode.Unencodable, `A record cannot be written to the embedded log: ${why}.`));
    }
    return writer.append(records);
  }

  async reader(group: string): Promise<LogReader> {
    // Registered before its first commit, so retention never deletes what it has not read.
    this.offsets.register(group);
    const r = new EmbeddedReader(this.source, group);
    this.readers.add(r);
    return r;
  }

  committed(group: string): number {
    return this.offsets.committed(group);
  }

  /**
   * Durably records a group's position (temp file, fdatasync, rename) without
   * blocking the event loop, then applies retention. Rejects with a
   * RetryableError (TRB_LOG_COMMIT) when the disk refuses (ENOSPC, EIO): the
   * position stays where it was and the caller retries with backoff.
   */
  async saveCommit(group: string, offset: number): Promise<void> {
    await this.offsets.save(group, offset);
    this.events.emit('commit');
    await this.applyRetention();
  }

  /**
   * Deletes the segments retention chose, oldest first. A segment leaves the
   * list only once its file is gone; a delete that fails rejects the commit
   * that triggered it (the position itself is saved, so the caller's retry
   * finds nothing left to commit and only retention runs again at the next).
   */
  private async applyRetention(): Promise<void> {
    const n = segmentsToDelete(this.segments, this.offsets.positions(), this.options, Date.now());
    for (const seg of this.segments.slice(0, n)) {
      try {
        await this.fs.unlink(seg.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new RetryableError(
            LogErrorCode.Commit,
            `Deleting the consumed embedded log segment ${seg.path} failed: ${(err as Error).message}.`,
            err,
          );
        }
      }
      const i = this.segments.indexOf(seg);
      if (i >= 0) this.segments.splice(i, 1); // a concurrent commit may have removed it already
    }
  }

  /**
   * Dedupe keys of the records the log held when it started, oldest first:
   * the embedded dedupe store is seeded from them, and a Redis-deduped node
   * converts its own lingering claims on the newest of them.
   */
  recoveredKeys(): readonly string[] {
    return this.keysAtStart;
  }

  async recentKeys(max: number): Promise<string[]> {
    return this.keysAtStart.slice(-max);
  }

  /** Counted over the groups read now: a group file nobody reads any more must not stop ingest. */
  backlogBytes(): number {
    if (this.readers.size === 0) return 0;
    let from = Number.POSITIVE_INFINITY;
    for (const r of this.readers) from = Math.min(from, this.offsets.committed(r.group));
    return bytesFrom(this.segments, from);
  }

  waitForCommit(ms: number): Promise<void> {
    return this.next('commit', ms);
  }

  /** Resolves at the next `event` of the log, or after `ms`, whichever comes first. */
  private next(event: 'append' | 'commit', ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(event, done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.once(event, done);
    });
  }

  /** Refuses new appends, waits for those in flight to be synced (or refused), then closes the readers and files. */
  async close(): Promise<void> {
    this.closed = true;
    const writer = this.writer;
    if (!writer) return;
    while (!writer.idle()) await new Promise((r) => setTimeout(r, 5));
    for (const r of this.readers) await r.close();
    await writer.close();
  }
}
