/**
 * Crash-safe disk buffer: one append-only file per chunk, named by the chunk's
 * id, so the id survives restarts.
 *
 *   file    = record(header) record(entries)*
 *   record  = u32 BE payload length | u32 BE crc32(payload) | payload
 *   header  = JSON { "v": 1, "tag": string, "createdAt": ms }
 *
 * An append resolves after its bytes are written (page cache: survives
 * `kill -9`), and after fdatasync under `fsync: always`; under `interval`,
 * dirty files are synced every `fsyncIntervalMs` (the window a power loss can
 * cost). A sealed file stays open until that sync; a chunk delivered and
 * deleted before it is never synced at all, so a buffer that keeps up costs
 * the disk almost nothing.
 *
 * The entries of chunks made of a few large appends (PackedForward input) are
 * also kept in memory, up to `memoryCacheBytes` in all, so sending them needs
 * no read back; other chunks, chunks over the budget, and every chunk
 * recovered at start are read from their file. On start every file is read back: complete records are kept, a torn
 * or corrupt tail is cut off and reported, unreadable files are set aside as
 * `*.corrupt` — a bad file never stops forwarding.
 *
 * Failures: a write that fails (EIO, ENOSPC) is cut off again and the append
 * refused (see BaseBuffer.store), and appends flow again once writes succeed.
 * A failed fdatasync refuses every later append until a restart (the kernel
 * may have dropped the unsynced pages, and a retried sync can falsely
 * succeed). A chunk file that cannot be deleted after delivery is retried a
 * few times, then left for the next start (its resend is deduplicated by the
 * aggregators). Every one is reported through `onIoError`.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type Filesystem, RetryableError, backoffDelay, realFilesystem, remainingBuffers } from '@tributary/core';
import { type ForwardChunk, countEntries } from '@tributary/forward-protocol';
import { AckedChunkIds, type AckedIdsWindow } from './acked-chunk-ids';
import { BaseBuffer, type OpenChunk } from './base-buffer';
import { BufferErrorCode, type BufferLimits, type SealedChunk } from './chunk-buffer';
import { RECORD_HEADER, frame } from './records';

export interface DiskBufferOptions extends BufferLimits {
  path: string;
  fsync: 'always' | 'interval';
  fsyncIntervalMs: number;
  /** Entries of recent chunks kept in memory for sending (bytes, all chunks together). 0: always read back. */
  memoryCacheBytes: number;
  /** Client chunk ids acked, remembered (and journaled beside the chunks) for this window. */
  ackedIds: AckedIdsWindow;
  /** The filesystem (tests inject faults through it). */
  fs?: Filesystem;
}

export interface RecoveryReport {
  file: string;
  chunks: number;
  events: number;
  /** Bytes cut off a torn or corrupt tail. */
  skippedBytes: number;
  problem?: string;
}

/** Above this many records, a chunk's entries are joined before sending (see readStorage). */
const MAX_SEND_PARTS = 8;
/** Up to this many parts of one append are written as one record without joining them first. */
const MAX_WRITE_PARTS = 16;
const SUFFIX = '.chunk';
/** A read buffer also holds the append that crossed the chunk limit, up to this much. */
const READ_SLACK_BYTES = 256 * 1024;
/** Free read buffers kept: the output window's worth. */
const READ_POOL_SIZE = 8;
/** Sealed files kept open for the interval sync at most; past it a sealed file is synced and closed at once. */
const MAX_OPEN_SEALED = 256;
/** Empty chunk files kept ready, so a new chunk never creates its file on the event loop. */
const SPARE_FILES = 8;
/** Deleting a delivered chunk's file is retried this often (backing off from 1 s), then left for the next start. */
const UNLINK_ATTEMPTS = 5;

interface ParsedFile {
  tag: string;
  createdAt: number;
  entries: Buffer[];
  /** Events in `entries`; counted only when verifying (0 otherwise). */
  events: number;
  goodLength: number;
  problem?: string;
}

/** Parses records until the first incomplete or corrupt one. */
function parseFile(data: Buffer, verify: boolean): ParsedFile | null {
  let pos = 0;
  let header: { tag: string; createdAt: number } | null = null;
  const entries: Buffer[] = [];
  let events = 0;
  let problem: string | undefined;
  while (pos < data.length) {
    if (pos + RECORD_HEADER > data.length) {
      problem = `torn record header at byte ${pos}`;
      break;
    }
    const len = data.readUInt32BE(pos);
    const sum = data.readUInt32BE(pos + 4);
    const start = pos + RECORD_HEADER;
    if (start + len > data.length) {
      problem = `torn record at byte ${pos} (${len} bytes announced, ${data.length - start} present)`;
      break;
    }
    const payload = data.subarray(start, start + len);
    if (verify && crc32(payload) !== sum) {
      problem = `checksum mismatch in the record at byte ${pos}`;
      break;
    }
    if (!header) {
      try {
        header = JSON.parse(payload.toString('utf8'));
      } catch {
        return null;
      }
    } else {
      if (verify) {
        try {
          events += countEntries(payload);
        } catch (err) {
          problem = `record at byte ${pos} holds invalid entries: ${(err as Error).message}`;
          break;
        }
      }
      entries.push(payload);
    }
    pos = start + len;
  }
  if (!header || typeof header.tag !== 'string') return null;
  return { tag: header.tag, createdAt: Number(header.createdAt) || Date.now(), entries, events, goodLength: pos, problem };
}

export class DiskBuffer extends BaseBuffer {
  /** Descriptors of open chunks' files, by chunk key. */
  private readonly fds = new Map<string, number>();
  /** Sealed chunks' files kept open for the next interval sync, by chunk key. */
  private readonly sealedFds = new Map<string, number>();
  private readonly dirty = new Set<number>();
  /** Descriptors with fdatasyncs in progress (how many); closing them waits. */
  private readonly syncing = new Map<number, number>();
  /** Descriptors to close once idle (see syncFd). */
  private readonly closing = new Set<number>();
  /** Free read buffers (chunkLimitBytes + READ_SLACK_BYTES each), and the ones lent to chunks being sent. */
  private readonly readPool: Buffer[] = [];
  private readonly lent = new Map<string, Buffer>();
  /** Empty files created ahead of time for the next chunks. */
  private readonly spares: Array<{ id: Buffer; fd: number }> = [];
  private sparesPending = 0;
  /** Entries of chunks written in this run, by chunk key, within `memoryCacheBytes`. */
  private readonly cache = new Map<string, Buffer[]>();
  private cachedBytes = 0;
  private readonly syncTimer: NodeJS.Timeout | null;
  private readonly fs: Filesystem;
  /** Set while creating spare files fails, so the failure is reported once, not per attempt. */
  private sparesFailing = false;
  private readonly unlinkRetries = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly options: DiskBufferOptions,
    ackedIds: AckedChunkIds,
  ) {
    super(options, ackedIds);
    this.fs = options.fs ?? realFilesystem;
    ackedIds.onError = (err) =>
      this.report('journal', err, 'The acked chunk id journal could not be rewritten or cut back; it is retried.');
    this.syncTimer = options.fsync === 'interval' ? setInterval(() => this.syncInterval(), options.fsyncIntervalMs) : null;
    this.syncTimer?.unref();
  }

  /**
   * The interval policy's tick: sync every file written since the last tick,
   * one at a time (a backlog of hundreds of files synced at once would take
   * every libuv thread and stall the reads and deletes the output needs),
   * then close the sealed ones.
   */
  private syncInterval(): void {
    if (this.syncing.size) return; // the last tick's syncs are still running; this tick's files wait for the next
    // The id journal last: ids reach the disk after the events written before them.
    const journal = this.ackedIds.fd;
    const fds = [...this.dirty].filter((fd) => fd !== journal);
    if (journal !== null && this.dirty.has(journal)) fds.push(journal);
    for (const [key, fd] of this.sealedFds) {
      this.sealedFds.delete(key);
      this.closeWhenSynced(fd);
    }
    const next = (i: number): void => {
      if (i >= fds.length) return;
      // A file whose chunk was delivered meanwhile is closed and needs no sync.
      if (this.dirty.has(fds[i])) this.syncFd(fds[i], () => next(i + 1));
      else next(i + 1);
    };
    next(0);
  }

  /**
   * fdatasync on the libuv pool. A descriptor is closed only when no sync is
   * running on it and nothing written to it is unsynced (`closeWhenSynced`),
   * or without its pending sync once its chunk is gone (`closeUnsynced`).
   */
  private syncFd(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
    this.dirty.delete(fd);
    this.syncing.set(fd, (this.syncing.get(fd) ?? 0) + 1);
    this.fs.fdatasync(fd).then(
      () => this.synced(fd, null, done),
      (err: NodeJS.ErrnoException) => this.synced(fd, err, done),
    );
  }

  private synced(fd: number, err: NodeJS.ErrnoException | null, done: (err: NodeJS.ErrnoException | null) => void): void {
    const left = (this.syncing.get(fd) ?? 1) - 1;
    if (left > 0) this.syncing.set(fd, left);
    else this.syncing.delete(fd);
    if (err) this.syncFailed(err);
    this.closeIfIdle(fd);
    done(err);
  }

  private syncFailed(err: NodeJS.ErrnoException): void {
    const reason = `fdatasync failed (${err.message}); restart the forwarder once the disk is fixed`;
    if (this.problem()?.includes('fdatasync failed')) return;
    this.fail(reason);
    this.report('fdatasync', err, 'The buffer takes no more events until a restart: a retried fdatasync can falsely succeed.');
  }

  private report(op: string, err: NodeJS.ErrnoException, what: string): void {
    this.onIoError?.(op, err, what);
  }

  private closeWhenSynced(fd: number): void {
    this.closing.add(fd);
    this.closeIfIdle(fd);
  }

  private closeUnsynced(fd: number): void {
    this.dirty.delete(fd);
    this.closeWhenSynced(fd);
  }

  private closeIfIdle(fd: number): void {
    if (!this.closing.has(fd) || this.syncing.has(fd) || this.dirty.has(fd)) return;
    this.closing.delete(fd);
    this.fs.close(fd).catch((err: NodeJS.ErrnoException) => this.report('close', err, 'A buffer file descriptor could not be closed.'));
  }

  /** Keeps a copy-free reference to entries just written, while the budget allows. */
  private remember(key: string, isNew: boolean, payload: Buffer): void {
    let list = this.cache.get(key);
    // Cached only when appends are large enough to fill the chunk in a few parts (see below).
    if (isNew && !list && this.options.memoryCacheBytes > 0 && payload.length * MAX_SEND_PARTS >= this.limits.chunkLimitBytes) {
      list = [];
      this.cache.set(key, list);
    }
    if (!list) return;
    // Only chunks that go out as they came in are kept: one of many small appends (Message mode) would need
    // a join before sending anyway, and its parts would outlive the young generation and wait for a full GC.
    if (list.length >= MAX_SEND_PARTS || this.cachedBytes + payload.length > this.options.memoryCacheBytes) {
      this.forget(key);
      return;
    }
    // A small view into a large socket read would keep the whole read alive: copy it.
    const kept = payload.buffer.byteLength > 2 * payload.length + 8192 ? Buffer.from(payload) : payload;
    list.push(kept);
    this.cachedBytes += kept.length;
  }

  private forget(key: string): void {
    const list = this.cache.get(key);
    if (!list) return;
    this.cache.delete(key);
    for (const b of list) this.cachedBytes -= b.length;
  }

  /** Opens the buffer directory, recovering every chunk (and acked chunk id) left by an earlier run. */
  static async open(options: DiskBufferOptions): Promise<{ buffer: DiskBuffer; recovered: RecoveryReport[] }> {
    const fs = options.fs ?? realFilesystem;
    await fs.mkdir(options.path);
    const buffer = new DiskBuffer(options, await AckedChunkIds.open(fs, options.path, options.ackedIds));
    const recovered = await buffer.recover();
    buffer.refillSpares();
    return { buffer, recovered };
  }

  private file(id: Buffer): string {
    return join(this.options.path, `${id.toString('hex')}${SUFFIX}`);
  }

  private async recover(): Promise<RecoveryReport[]> {
    const reports: RecoveryReport[] = [];
    const found: SealedChunk[] = [];
    for (const name of await this.fs.readdir(this.options.path)) {
      if (!name.endsWith(SUFFIX)) continue;
      const path = join(this.options.path, name);
      const id = Buffer.from(name.slice(0, -SUFFIX.length), 'hex');
      const data = await this.fs.readFile(path);
      if (data.length === 0 && id.length === 16) {
        // A spare file made ahead of time (or a chunk whose first write never happened): nothing was accepted into it.
        await this.fs.unlink(path);
        continue;
      }
      const parsed = id.length === 16 ? parseFile(data, true) : null;
      if (!parsed) {
        await this.fs.rename(path, `${path}.corrupt`);
        reports.push({
          file: name,
          chunks: 0,
          events: 0,
          skippedBytes: data.length,
          problem: 'unreadable header; file set aside as .corrupt',
        });
        continue;
      }
      if (parsed.goodLength < data.length) await this.fs.truncate(path, parsed.goodLength);
      const events = parsed.events;
      const bytes = parsed.entries.reduce((n, e) => n + e.length, 0);
      if (events === 0) {
        await this.fs.unlink(path);
      } else {
        found.push({
          id,
          tag: parsed.tag,
          count: events,
          bytes,
          stored: parsed.goodLength,
          createdAt: parsed.createdAt,
          attempts: 0,
          notBefore: 0,
        });
      }
      reports.push({ file: name, chunks: events ? 1 : 0, events, skippedBytes: data.length - parsed.goodLength, problem: parsed.problem });
    }
    found.sort((a, b) => a.createdAt - b.createdAt);
    for (const c of found) this.adopt(c);
    return reports;
  }

  /**
   * A new chunk takes a file created ahead of time in the background: creating
   * a file can wait on the filesystem journal (behind another file's
   * fdatasync) for milliseconds, which the event loop must not.
   */
  protected newId(): Buffer {
    const spare = this.spares.shift();
    this.refillSpares();
    if (!spare) return randomBytes(16);
    this.fds.set(spare.id.toString('hex'), spare.fd);
    return spare.id;
  }

  private refillSpares(): void {
    while (!this.closed && this.spares.length + this.sparesPending < SPARE_FILES) {
      this.sparesPending++;
      const id = randomBytes(16);
      this.fs.open(this.file(id), 'a').then(
        (fd) => {
          this.sparesPending--;
          this.sparesFailing = false;
          if (this.closed) {
            this.discardSpare({ id, fd });
            return;
          }
          this.spares.push({ id, fd });
        },
        (err: NodeJS.ErrnoException) => {
          this.sparesPending--;
          // writeOpen creates the file itself then, and a failure there refuses the append.
          if (!this.sparesFailing) this.report('open', err, 'A spare chunk file could not be created; new chunks create their own.');
          this.sparesFailing = true;
        },
      );
    }
  }

  private discardSpare(spare: { id: Buffer; fd: number }): void {
    try {
      this.fs.closeSync(spare.fd);
      this.fs.unlinkSync(this.file(spare.id));
    } catch (err) {
      this.report('unlink', err as NodeJS.ErrnoException, 'An unused spare chunk file was left; the next start removes it.');
    }
  }

  protected writeOpen(chunk: OpenChunk, parts: ForwardChunk[], isNew: boolean): number {
    const key = chunk.id.toString('hex');
    let fd = this.fds.get(key);
    const buffers: Buffer[] = [];
    try {
      if (fd === undefined) {
        fd = this.fs.openSync(this.file(chunk.id), 'a'); // no spare was ready
        this.fds.set(key, fd);
      }
      if (isNew) buffers.push(...frame([Buffer.from(JSON.stringify({ v: 1, tag: chunk.tag, createdAt: chunk.createdAt }))]));
      // A few parts are written as they are (one record, checksummed across them); many small ones are
      // joined first: one checksum call and one iovec beat hundreds.
      const payloads = parts.length <= MAX_WRITE_PARTS ? parts.map((p) => p.entries) : [Buffer.concat(parts.map((p) => p.entries))];
      buffers.push(...frame(payloads));
      let written = 0;
      let total = 0;
      for (const b of buffers) total += b.length;
      while (written < total) written += this.fs.writevSync(fd, written === 0 ? buffers : remainingBuffers(buffers, written));
      this.dirty.add(fd);
      for (let i = 0; i < payloads.length; i++) this.remember(key, isNew && i === 0, payloads[i]);
      return total;
    } catch (err) {
      this.report('write', err as NodeJS.ErrnoException, 'An append was refused (no ack); it is cut off again.');
      throw new RetryableError(
        BufferErrorCode.Io,
        `Writing to the buffer file ${this.file(chunk.id)} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  protected undoWrite(chunk: OpenChunk, isNew: boolean): boolean {
    const key = chunk.id.toString('hex');
    this.forget(key);
    const fd = this.fds.get(key);
    if (fd === undefined) return true;
    if (isNew) {
      // Nothing in the file was acked: it goes (emptied first, so that should the delete fail, the next start
      // finds an empty file and removes it quietly).
      this.fds.delete(key);
      try {
        this.fs.ftruncateSync(fd, 0);
      } catch (err) {
        // The delete below removes it anyway; failing that, the next start removes a chunk file without events.
        this.report('truncate', err as NodeJS.ErrnoException, 'The file of a chunk whose first write failed could not be emptied.');
      }
      this.closeUnsynced(fd);
      this.fs
        .unlink(this.file(chunk.id))
        .catch((err: NodeJS.ErrnoException) =>
          this.report('unlink', err, 'The file of a chunk whose first write failed was left; the next start removes it.'),
        );
      return true;
    }
    try {
      this.fs.ftruncateSync(fd, chunk.stored);
      return true;
    } catch (err) {
      this.report('truncate', err as NodeJS.ErrnoException, 'A failed append could not be cut off; its chunk is sealed as it was.');
      return false;
    }
  }

  protected override get idsAfterSync(): boolean {
    return this.options.fsync === 'always';
  }

  protected override recordIds(ids: string[], now: number): void {
    if (!ids.length) return;
    const replaced = this.ackedIds.record(ids, now);
    const fd = this.ackedIds.fd;
    if (fd !== null) this.dirty.add(fd);
    if (replaced !== null) this.closeUnsynced(replaced);
  }

  protected async sync(): Promise<void> {
    if (this.options.fsync !== 'always' || this.dirty.size === 0) return;
    const fds = [...this.dirty];
    await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => this.syncFd(fd, (err) => (err ? reject(err) : resolve())))));
  }

  protected sealStorage(chunk: OpenChunk): void {
    const key = chunk.id.toString('hex');
    const fd = this.fds.get(key);
    if (fd === undefined) return;
    this.fds.delete(key);
    // Sealing changes no bytes. Under `always` the append that sealed the chunk syncs the file before
    // its ack, and it closes after. Under `interval` a file not synced yet stays open for the next tick
    // (or until the chunk is delivered, when it needs no sync any more) — unless a slow disk has let
    // too many pile up: then it is synced now and closed, as descriptors are finite.
    const unsynced = this.dirty.has(fd);
    if (this.options.fsync === 'interval' && unsynced) {
      if (this.sealedFds.size < MAX_OPEN_SEALED) {
        this.sealedFds.set(key, fd);
        return;
      }
      this.syncFd(fd, () => {}); // a failure stops appends (syncFailed)
    }
    this.closeWhenSynced(fd);
  }

  /**
   * Reads a chunk's file into a pooled buffer when it fits. Chunks read back
   * (Message-mode input, backlogs) would otherwise allocate a fresh buffer of
   * about `chunkLimitBytes` per send, and that garbage, outside the V8 heap,
   * waits for a full GC: it was what pushed peak RSS around. A buffer returns
   * to the pool when its chunk is delivered.
   */
  private async readFile(chunk: SealedChunk): Promise<Buffer> {
    const key = chunk.id.toString('hex');
    const capacity = this.limits.chunkLimitBytes + READ_SLACK_BYTES;
    if (chunk.stored > capacity) return this.fs.readFile(this.file(chunk.id));
    const target = this.readPool.pop() ?? Buffer.allocUnsafeSlow(capacity);
    const fd = await this.fs.open(this.file(chunk.id), 'r');
    let got = 0;
    try {
      for (;;) {
        const bytesRead = await this.fs.read(fd, target, got, capacity - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (err) {
      this.readPool.push(target);
      throw err;
    } finally {
      await this.fs.close(fd);
    }
    // A resend after a failure reads again; the earlier loan may still be referenced by a dead socket: not pooled.
    this.lent.set(key, target);
    return target.subarray(0, got);
  }

  /** The chunk's file is about to go: release its descriptor, cached entries and read buffer, without a sync. */
  private dropRefs(chunk: SealedChunk): void {
    const key = chunk.id.toString('hex');
    this.forget(key);
    const loan = this.lent.get(key);
    if (loan) {
      this.lent.delete(key);
      if (this.readPool.length < READ_POOL_SIZE) this.readPool.push(loan);
    }
    const fd = this.sealedFds.get(key);
    if (fd === undefined) return;
    this.sealedFds.delete(key);
    this.closeUnsynced(fd);
  }

  protected async readStorage(chunk: SealedChunk): Promise<Buffer[]> {
    const cached = this.cache.get(chunk.id.toString('hex'));
    if (cached) return cached;
    // Checksums and entries were verified when the data was accepted or recovered; a read only splits records.
    const data = await this.readFile(chunk);
    const parsed = parseFile(data, false);
    if (!parsed) throw new RetryableError(BufferErrorCode.Io, `Buffer file ${this.file(chunk.id)} became unreadable.`);
    // A few large appends (PackedForward input) go out as they are; many small ones (Message mode) are
    // moved together over the record headers, in the buffer just read (no second allocation).
    if (parsed.entries.length <= MAX_SEND_PARTS) return parsed.entries;
    let end = 0;
    for (const e of parsed.entries) {
      data.copyWithin(end, e.byteOffset - data.byteOffset, e.byteOffset - data.byteOffset + e.length);
      end += e.length;
    }
    return [data.subarray(0, end)];
  }

  /** Never rejects: a file that cannot be deleted is retried, then left for the next start (see unlinkFailed). */
  protected async removeStorage(chunk: SealedChunk): Promise<void> {
    this.dropRefs(chunk);
    const path = this.file(chunk.id);
    await this.fs.unlink(path).catch((err: NodeJS.ErrnoException) => this.unlinkFailed(path, err, 1));
  }

  protected removeStorageSync(chunk: SealedChunk): void {
    this.dropRefs(chunk);
    const path = this.file(chunk.id);
    try {
      this.fs.unlinkSync(path);
    } catch (err) {
      this.unlinkFailed(path, err as NodeJS.ErrnoException, 1);
    }
  }

  /**
   * A delivered (or dropped) chunk's file could not be deleted: its space is
   * counted free all the same, and the delete is retried with backoff. Left
   * in place, the next start would send the chunk again under its id, which
   * the aggregators recognise.
   */
  private unlinkFailed(path: string, err: NodeJS.ErrnoException, attempt: number): void {
    if (err.code === 'ENOENT') return;
    const last = attempt >= UNLINK_ATTEMPTS || this.closed;
    this.report(
      'unlink',
      err,
      last
        ? `A delivered chunk's file could not be deleted after ${attempt} attempts; it is left for the next start, which sends it again under its id.`
        : `A delivered chunk's file could not be deleted; retrying (attempt ${attempt} of ${UNLINK_ATTEMPTS}).`,
    );
    if (last) return;
    const timer = setTimeout(
      () => {
        this.unlinkRetries.delete(timer);
        this.fs.unlink(path).catch((e: NodeJS.ErrnoException) => this.unlinkFailed(path, e, attempt + 1));
      },
      backoffDelay(attempt, { initialMs: 1000, maxMs: 30_000 }),
    );
    timer.unref();
    this.unlinkRetries.add(timer);
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.syncTimer) clearInterval(this.syncTimer);
    for (const t of this.unlinkRetries) clearTimeout(t);
    this.unlinkRetries.clear();
    for (const fd of this.dirty) {
      try {
        this.fs.fdatasyncSync(fd);
      } catch (err) {
        this.syncFailed(err as NodeJS.ErrnoException);
      }
    }
    this.dirty.clear();
    for (const fd of this.sealedFds.values()) this.closeWhenSynced(fd);
    this.sealedFds.clear();
    // A spare still being created closes and removes itself when its open returns; wait for it (bounded).
    for (let i = 0; i < 200 && this.sparesPending > 0; i++) await new Promise((r) => setTimeout(r, 5));
    for (const spare of this.spares.splice(0)) this.discardSpare(spare);
    // The journal was synced above; it is closed once an interval sync still running on it is done (bounded wait).
    const journal = this.ackedIds.fd;
    for (let i = 0; i < 400 && journal !== null && this.syncing.has(journal); i++) await new Promise((r) => setTimeout(r, 5));
    if (journal !== null && this.syncing.has(journal)) this.closeWhenSynced(journal);
    else if (journal !== null) {
      try {
        this.fs.closeSync(journal);
      } catch (err) {
        this.report('close', err as NodeJS.ErrnoException, 'The acked chunk id journal could not be closed.');
      }
    }
    this.cache.clear();
    this.cachedBytes = 0;
    this.readPool.length = 0;
    this.lent.clear();
  }
}
