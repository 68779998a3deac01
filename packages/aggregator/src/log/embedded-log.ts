/**
 * Embedded disk log: the single-node durable log, with no servers.
 *
 *   dir/segments/<base offset, 20 digits>.log   append-only segments
 *   dir/consumers/<group>.json                  committed offset per group
 *
 *   segment = record*
 *   record  = u32 BE length | u32 BE checksum | body
 *   body    = head | entries
 *   head    = u16 BE tag length | tag | u16 BE key length | key | u32 BE count
 *   checksum = crc32(head, crc32(entries))   ; entries first, so ingest's crc of the entries is reused
 *
 * One partition; the offset is the record's index in the log. Appends are
 * group-committed: every append waiting while a write is in progress goes out
 * in the next single write, and one fdatasync covers every group written
 * since the last; the next group's write overlaps the previous one's sync.
 * An append resolves, and its records become readable, only once synced.
 * On start the last segment's torn tail is cut off. Retention deletes whole
 * segments once every consumer group has committed past them and they are
 * over the size or age limit.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { RetryableError, TributaryError, remainingBuffers, writeFileAtomic } from '@tributary/core';
import { type DurableLog, LogErrorCode, type LogReader, type LogRecord, type StoredRecord } from './durable-log';

export interface EmbeddedLogOptions {
  path: string;
  segmentBytes: number;
  retentionBytes: number;
  retentionMs: number;
}

const HEADER = 8;
/** About how much one poll reads. */
const READ_BYTES = 8 * 1024 * 1024;

interface Segment {
  base: number;
  path: string;
  /** Records in the segment. */
  records: number;
  bytes: number;
  /** Byte position of each record, so a read seeks straight to an offset. */
  positions: number[];
  createdAt: number;
}

/** The head stores the tag and key lengths in 16 bits and the count in 32. */
const MAX_HEAD_FIELD_BYTES = 0xffff;

/** Why `r` cannot be encoded as a record body, or null when it can. */
function unencodable(r: LogRecord): string | null {
  const tagBytes = Buffer.byteLength(r.tag, 'utf8');
  if (tagBytes > MAX_HEAD_FIELD_BYTES) return `its tag is ${tagBytes} bytes (at most ${MAX_HEAD_FIELD_BYTES})`;
  const keyBytes = Buffer.byteLength(r.key, 'utf8');
  if (keyBytes > MAX_HEAD_FIELD_BYTES) return `its key is ${keyBytes} bytes (at most ${MAX_HEAD_FIELD_BYTES})`;
  if (!(r.count >= 0 && r.count <= 0xffffffff)) return `its count ${r.count} is not a 32-bit count`;
  return null;
}

/** `r` must be encodable (`unencodable(r) === null`): append checks before queuing. */
function encodeBody(r: LogRecord): Buffer[] {
  const tag = Buffer.from(r.tag, 'utf8');
  const key = Buffer.from(r.key, 'utf8');
  const head = Buffer.allocUnsafe(2 + tag.length + 2 + key.length + 4);
  let p = head.writeUInt16BE(tag.length, 0);
  p += tag.copy(head, p);
  p = head.writeUInt16BE(key.length, p);
  p += key.copy(head, p);
  head.writeUInt32BE(r.count, p);
  return [head, r.entries];
}

function headLength(body: Buffer): number {
  const tagLen = body.readUInt16BE(0);
  const keyLen = body.readUInt16BE(2 + tagLen);
  return 2 + tagLen + 2 + keyLen + 4;
}

function checksum(head: Buffer, entries: Buffer, entriesCrc?: number): number {
  return crc32(head, entriesCrc ?? crc32(entries)) >>> 0;
}

/** Only the dedupe key of a body, without touching the entries. */
function bodyKey(body: Buffer): string {
  const tagLen = body.readUInt16BE(0);
  const keyLen = body.readUInt16BE(2 + tagLen);
  return body.toString('utf8', 4 + tagLen, 4 + tagLen + keyLen);
}

function decodeBody(body: Buffer): LogRecord {
  let p = 0;
  const tagLen = body.readUInt16BE(p);
  const tag = body.toString('utf8', p + 2, p + 2 + tagLen);
  p += 2 + tagLen;
  const keyLen = body.readUInt16BE(p);
  const key = body.toString('utf8', p + 2, p + 2 + keyLen);
  p += 2 + keyLen;
  const count = body.readUInt32BE(p);
  return { tag, key, count, entries: body.subarray(p + 4) };
}

/** Scans records in `data`; returns them (bodies) and where the valid prefix ends. */
function scan(data: Buffer, verify: boolean): { bodies: Buffer[]; positions: number[]; end: number } {
  const bodies: Buffer[] = [];
  const positions: number[] = [];
  let pos = 0;
  while (pos + HEADER <= data.length) {
    const len = data.readUInt32BE(pos);
    if (pos + HEADER + len > data.length) break;
    const body = data.subarray(pos + HEADER, pos + HEADER + len);
    if (verify) {
      const h = body.length >= 4 ? headLength(body) : body.length + 1;
      if (h > body.length || checksum(body.subarray(0, h), body.subarray(h)) !== data.readUInt32BE(pos + 4)) break;
    }
    bodies.push(body);
    positions.push(pos);
    pos += HEADER + len;
  }
  return { bodies, positions, end: pos };
}

export class EmbeddedLog implements DurableLog {
  readonly kind = 'embedded' as const;
  private readonly segments: Segment[] = [];
  private fd = -1;
  private nextOffset = 0;
  /** Appends waiting for the writer. */
  private queue: Array<{ records: LogRecord[]; resolve(): void; reject(err: Error): void }> = [];
  /** A group is being written. */
  private writing = false;
  /** Groups written and waiting for the next fdatasync, oldest first. */
  private unsynced: Array<{ items: Array<{ resolve(): void; reject(err: Error): void }>; fd: number; end: number }> = [];
  private syncing = false;
  /** Descriptors the sync in progress covers. */
  private syncingFds = new Set<number>();
  /** The current segment is full: the next group goes to a new one. */
  private needsRoll = false;
  private rolling = false;
  /** Offsets below this are written and synced: what readers may see. */
  private durableOffset = 0;
  /** Descriptors of rolled segments, closed once no sync needs them (closeRetired). */
  private readonly retired = new Set<number>();
  /** Set when the log can no longer promise durability; appends are refused until restart. */
  private broken: string | null = null;
  private closed = false;
  /** "append" when records become readable, "commit" when a group saved its position. */
  private readonly events = new EventEmitter();
  private readonly readers = new Set<EmbeddedReader>();
  private failure: string | null = null;
  private readonly committedOffsets = new Map<string, number>();
  /** Groups whose offset file could not be read at start, and why. */
  private readonly unreadableCommits = new Map<string, string>();
  private readonly keysAtStart: string[] = [];

  constructor(private readonly options: EmbeddedLogOptions) {
    this.events.setMaxListeners(0);
  }

  private get segDir(): string {
    return join(this.options.path, 'segments');
  }

  get consumersDir(): string {
    return join(this.options.path, 'consumers');
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.segDir, { recursive: true });
    fs.mkdirSync(this.consumersDir, { recursive: true });
    const names = fs
      .readdirSync(this.segDir)
      .filter((n) => n.endsWith('.log'))
      .sort();
    for (const name of names) {
      const path = join(this.segDir, name);
      const st = fs.statSync(path);
      this.segments.push({ base: Number(name.slice(0, -4)), path, records: 0, bytes: st.size, positions: [], createdAt: st.mtimeMs });
    }
    // One read of every segment: record positions, the torn tail, and the keys the dedupe store needs.
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i];
      const last = i === this.segments.length - 1;
      const data = fs.readFileSync(seg.path);
      const { bodies, positions, end } = scan(data, last);
      if (last && end < data.length) fs.truncateSync(seg.path, end);
      seg.records = bodies.length;
      seg.positions = positions;
      seg.bytes = end;
      for (const b of bodies) {
        const key = bodyKey(b);
        if (key) this.keysAtStart.push(key);
      }
    }
    const tail = this.segments[this.segments.length - 1];
    this.nextOffset = tail ? tail.base + tail.records : 0;
    this.loadCommits();
    this.durableOffset = this.nextOffset;
    if (!tail || tail.bytes >= this.options.segmentBytes) this.roll();
    else this.fd = fs.openSync(tail.path, 'a');
  }

  /** The offset the next appended record gets. */
  get endOffset(): number {
    return this.nextOffset;
  }

  unavailable(): string | null {
    return this.closed ? 'closed' : (this.broken ?? this.failure);
  }

  append(records: LogRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new RetryableError(LogErrorCode.Closed, 'The embedded log is closed.'));
    if (this.broken) return Promise.reject(new RetryableError(LogErrorCode.Append, `The embedded log refuses appends: ${this.broken}.`));
    if (records.length === 0) return Promise.resolve();
    for (const r of records) {
      const why = unencodable(r);
      // Permanent: the same record can never be written; the writer never sees it, so it cannot throw there.
      if (why)
        return Promise.reject(new TributaryError(LogErrorCode.Unencodable, `A record cannot be written to the embedded log: ${why}.`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      this.flush();
    });
  }

  /** Starts a new segment at start-up (nothing else runs yet). */
  private roll(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.openedSegment(fs.openSync(this.segmentPath(this.nextOffset), 'a'));
  }

  private segmentPath(base: number): string {
    return join(this.segDir, `${String(base).padStart(20, '0')}.log`);
  }

  private openedSegment(fd: number): void {
    this.fd = fd;
    this.segments.push({
      base: this.nextOffset,
      path: this.segmentPath(this.nextOffset),
      records: 0,
      bytes: 0,
      positions: [],
      createdAt: Date.now(),
    });
  }

  /**
   * Starts a new segment while appends run: the file is created off the event
   * loop (a create can wait on the filesystem journal behind a sync); the old
   * descriptor is closed once its last write is synced. Appends wait for it;
   * if the create fails they are refused and the next append tries again.
   */
  private rollInBackground(): void {
    this.rolling = true;
    fs.open(this.segmentPath(this.nextOffset), 'a', (err, fd) => {
      this.rolling = false;
      if (err) {
        this.failure = `creating a segment failed: ${err.message}`;
        const e = new RetryableError(LogErrorCode.Append, `Creating an embedded log segment failed: ${err.message}.`, err);
        for (const item of this.queue.splice(0)) item.reject(e);
        return;
      }
      this.retired.add(this.fd);
      this.needsRoll = false;
      this.openedSegment(fd);
      this.closeRetired();
      this.flush();
    });
  }

  /**
   * The writer: takes every queued append as one group and writes it while
   * the previous group may still be syncing, so the disk's write and flush
   * overlap instead of alternating. A write that fails is cut off again
   * (ftruncate to the last good byte) so later records never follow garbage.
   */
  private flush(): void {
    if (this.writing || this.rolling || this.queue.length === 0) return;
    if (this.needsRoll) {
      this.rollInBackground();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.writing = true;
    const buffers: Buffer[] = [];
    const sizes: number[] = [];
    let n = 0;
    for (const item of batch) {
      for (const r of item.records) {
        const parts = encodeBody(r);
        const len = parts[0].length + parts[1].length;
        const hdr = Buffer.allocUnsafe(HEADER);
        hdr.writeUInt32BE(len, 0);
        hdr.writeUInt32BE(checksum(parts[0], parts[1], r.entriesCrc), 4);
        buffers.push(hdr, parts[0], parts[1]);
        sizes.push(HEADER + len);
        n++;
      }
    }
    const seg = this.segments[this.segments.length - 1];
    const fd = this.fd;
    writeAll(fd, buffers, (err) => {
      this.writing = false;
      if (err) {
        try {
          fs.ftruncateSync(fd, seg.bytes);
          this.failure = `append failed: ${err.message}`;
        } catch (cutErr) {
          this.broken = `a failed append could not be cut off (${(cutErr as Error).message}); restart the node once the disk is fixed`;
        }
        const e = new RetryableError(LogErrorCode.Append, `Appending to the embedded log failed: ${err.message}.`, err);
        for (const item of batch) item.reject(e);
        this.flush();
        return;
      }
      for (const size of sizes) {
        seg.positions.push(seg.bytes);
        seg.bytes += size;
      }
      seg.records += n;
      this.nextOffset += n;
      this.unsynced.push({ items: batch, fd, end: this.nextOffset });
      if (seg.bytes >= this.options.segmentBytes) this.needsRoll = true;
      this.sync();
      this.flush();
    });
  }

  /**
   * The syncer: one fdatasync covers every group written since the last one;
   * only then are their appends resolved and their records visible to
   * readers. A failed fdatasync is not retried (the kernel may have dropped
   * the dirty pages and a second call could report success falsely): the
   * log refuses appends until the node is restarted and recovers the files.
   */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    if (this.broken) {
      this.rejectWaiting(new RetryableError(LogErrorCode.Append, `The embedded log refuses appends: ${this.broken}.`));
      return;
    }
    const groups = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    const fds = [...new Set(groups.map((g) => g.fd))];
    this.syncingFds = new Set(fds);
    let left = fds.length;
    let failed: Error | null = null;
    for (const fd of fds) {
      fs.fdatasync(fd, (err) => {
        if (err) failed ??= err;
        if (--left > 0) return;
        this.syncing = false;
        this.syncingFds = new Set();
        this.closeRetired();
        if (failed) {
          this.broken = `fdatasync failed (${failed.message}); restart the node once the disk is fixed`;
          const e = new RetryableError(LogErrorCode.Append, `The embedded log could not be made durable: ${failed.message}.`, failed);
          for (const g of groups) for (const item of g.items) item.reject(e);
          this.rejectWaiting(e);
          return;
        }
        this.failure = null;
        this.durableOffset = groups[groups.length - 1].end;
        for (const g of groups) for (const item of g.items) item.resolve();
        this.events.emit('append');
        this.sync();
      });
    }
  }

  /** Closes the rolled segments' descriptors that no written-but-unsynced group and no running sync needs. */
  private closeRetired(): void {
    for (const fd of this.retired) {
      if (this.syncingFds.has(fd) || this.unsynced.some((g) => g.fd === fd)) continue;
      this.retired.delete(fd);
      fs.close(fd, () => {});
    }
  }

  /** Rejects every append not yet written or not yet synced. */
  private rejectWaiting(e: Error): void {
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) item.reject(e);
    const unsynced = this.unsynced;
    this.unsynced = [];
    for (const g of unsynced) for (const item of g.items) item.reject(e);
  }

  async reader(group: string): Promise<LogReader> {
    // Registered before its first commit, so retention never deletes what it has not read.
    if (!this.committedOffsets.has(group)) this.committedOffsets.set(group, 0);
    const r = new EmbeddedReader(this, group, this.committed(group));
    this.readers.add(r);
    return r;
  }

  /** The offset just past the last record a reader can see (written and synced). */
  readableEnd(): number {
    return this.durableOffset;
  }

  committed(group: string): number {
    return this.committedOffsets.get(group) ?? 0;
  }

  /**
   * Reads every group's committed offset. A file that cannot be read or does
   * not hold an offset within the log is not taken as offset 0 (that would
   * silently replay the whole retained log): the group's reader refuses to
   * poll with TRB_LOG_COMMIT_UNREADABLE until an operator restores or removes
   * the file (docs/operations.md), and retention keeps every segment meanwhile.
   */
  private loadCommits(): void {
    for (const name of fs.readdirSync(this.consumersDir)) {
      if (!name.endsWith('.json')) continue;
      const group = name.slice(0, -5);
      const path = join(this.consumersDir, name);
      let offset: unknown;
      try {
        offset = JSON.parse(fs.readFileSync(path, 'utf8')).offset;
      } catch (err) {
        this.unreadableCommits.set(group, `${path} cannot be read (${(err as Error).message})`);
      }
      if (
        !this.unreadableCommits.has(group) &&
        (!Number.isSafeInteger(offset) || (offset as number) < 0 || (offset as number) > this.nextOffset)
      ) {
        this.unreadableCommits.set(group, `${path} holds offset ${JSON.stringify(offset)}, not one within the log (0..${this.nextOffset})`);
      }
      this.committedOffsets.set(group, this.unreadableCommits.has(group) ? 0 : (offset as number));
    }
  }

  /**
   * Durably records a group's position (temp file, fdatasync, rename) without
   * blocking the event loop. Rejects with a RetryableError (TRB_LOG_COMMIT)
   * when the disk refuses (ENOSPC, EIO): the position stays where it was and
   * the caller retries with backoff.
   */
  async saveCommit(group: string, offset: number): Promise<void> {
    const file = join(this.consumersDir, `${group}.json`);
    const tmp = `${file}.tmp`;
    try {
      await writeFileAtomic(file, JSON.stringify({ offset, at: new Date().toISOString() }), tmp);
    } catch (err) {
      throw new RetryableError(
        LogErrorCode.Commit,
        `Saving consumer group ${group}'s position (offset ${offset}) failed: ${(err as Error).message}.`,
        err,
      );
    }
    this.committedOffsets.set(group, offset);
    this.applyRetention();
    this.events.emit('commit');
  }

  /** Why a group's committed offset could not be read at start; null when it was (or there was none). */
  unreadableCommit(group: string): string | null {
    return this.unreadableCommits.get(group) ?? null;
  }

  /** Deletes sealed segments every group has committed past, when over the size or age limit. */
  private applyRetention(): void {
    if (this.segments.length <= 1 || this.committedOffsets.size === 0) return;
    const minCommitted = Math.min(...this.committedOffsets.values());
    let total = this.segments.reduce((n, s) => n + s.bytes, 0);
    while (this.segments.length > 1) {
      const seg = this.segments[0];
      const next = this.segments[1];
      const consumed = next.base <= minCommitted;
      const over = total > this.options.retentionBytes || Date.now() - seg.createdAt > this.options.retentionMs;
      if (!consumed || !over) break;
      fs.rmSync(seg.path, { force: true });
      this.segments.shift();
      total -= seg.bytes;
    }
  }

  /**
   * Reads records from `offset` on (up to `maxRecords`, about `maxBytes`) from
   * the segment holding it, into `scratch` when it is large enough (the
   * records are then views into it, valid until the caller reuses it).
   */
  async readFrom(offset: number, maxRecords: number, maxBytes = READ_BYTES, scratch?: Buffer): Promise<StoredRecord[]> {
    if (offset >= this.durableOffset) return [];
    const seg = this.segments.find((s, i) => offset >= s.base && (i === this.segments.length - 1 || offset < this.segments[i + 1].base));
    if (!seg) return [];
    const first = offset - seg.base;
    const visible = Math.min(seg.records, this.durableOffset - seg.base);
    if (first >= visible) return [];
    const start = seg.positions[first];
    let last = first + 1;
    // Whole records up to maxBytes (the first one whatever its size), so a poll fits the reader's scratch buffer:
    // a range one record past it meant a fresh buffer per poll, and a full GC every few dozen milliseconds.
    const endOf = (i: number) => (i + 1 < seg.records ? seg.positions[i + 1] : seg.bytes);
    while (last < visible && last - first < maxRecords && endOf(last) - start <= maxBytes) last++;
    const end = last < seg.records ? seg.positions[last] : seg.bytes;
    const data = scratch && scratch.length >= end - start ? scratch.subarray(0, end - start) : Buffer.allocUnsafe(end - start);
    const handle = await fs.promises.open(seg.path, 'r');
    try {
      let got = 0;
      while (got < data.length) got += (await handle.read(data, got, data.length - got, start + got)).bytesRead;
    } finally {
      await handle.close();
    }
    const { bodies } = scan(data, false);
    return bodies.map((b, i) => ({ ...decodeBody(b), partition: 0, offset: offset + i }));
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
    const from = Math.min(...[...this.readers].map((r) => this.committed(r.group)));
    let bytes = 0;
    for (const seg of this.segments) {
      if (seg.base + seg.records <= from) continue;
      const first = Math.max(0, from - seg.base);
      bytes += seg.bytes - (first < seg.records ? seg.positions[first] : seg.bytes);
    }
    return bytes;
  }

  waitForCommit(ms: number): Promise<void> {
    return this.next('commit', ms);
  }

  waitForAppend(ms: number): Promise<void> {
    return this.next('append', ms);
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

  async close(): Promise<void> {
    this.closed = true;
    while (this.writing || this.syncing || this.rolling || this.queue.length || this.unsynced.length)
      await new Promise((r) => setTimeout(r, 5));
    for (const r of this.readers) await r.close();
    for (const fd of this.retired) fs.closeSync(fd);
    this.retired.clear();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * A group's reader. Every poll reads into the same buffer: egress reads the
 * whole log back, and a fresh multi-megabyte buffer per poll was most of the
 * aggregator's external allocation — each one a step towards V8's next full
 * GC. A poll's records are therefore valid until the next poll (the
 * LogReader contract).
 */
class EmbeddedReader implements LogReader {
  private position: number;
  private closed = false;
  private atEnd = false;
  private readonly scratch = Buffer.allocUnsafeSlow(READ_BYTES);

  constructor(
    private readonly log: EmbeddedLog,
    readonly group: string,
    committed: number,
  ) {
    this.position = committed;
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
    let records = await this.log.readFrom(this.position, maxRecords, READ_BYTES, this.scratch);
    if (records.length === 0 && maxWaitMs > 0) {
      await this.log.waitForAppend(maxWaitMs);
      records = await this.log.readFrom(this.position, maxRecords, READ_BYTES, this.scratch);
    }
    if (records.length) this.position = records[records.length - 1].offset + 1;
    this.atEnd = this.position >= this.log.readableEnd();
    return records;
  }

  caughtUp(): boolean {
    return this.atEnd;
  }

  async commit(records: StoredRecord[]): Promise<void> {
    if (records.length === 0) return;
    const next = Math.max(...records.map((r) => r.offset)) + 1;
    if (next > this.log.committed(this.group)) await this.log.saveCommit(this.group, next);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function writeAll(fd: number, buffers: Buffer[], cb: (err: Error | null) => void): void {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  const go = (bufs: Buffer[], done: number) => {
    fs.writev(fd, bufs, (err, written) => {
      if (err) return cb(err);
      const sum = done + written;
      if (sum >= total) return cb(null);
      const rest = remainingBuffers(bufs, written);
      go(rest, sum);
    });
  };
  go(buffers, 0);
}
