/**
 * Chunks on disk, one file per chunk (format: chunk-file.ts), put together
 * from its parts: spare files for new chunks, the descriptor and fsync
 * lifecycle, the write cache and the read pool. Recovery happens before (see
 * DiskBuffer.open).
 *
 * Failures: a write that fails (EIO, ENOSPC) throws, and `undo` cuts off what
 * the append wrote, so appends flow again once writes succeed. A failed
 * fdatasync fails the buffer until a restart (see descriptors.ts). A chunk
 * file that cannot be deleted after delivery is retried a few times, then
 * left for the next start (its resend is deduplicated by the aggregators).
 * Every one is reported through `StorageEvents.ioError`.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type Filesystem, RetryableError, backoffDelay, writevAllSync } from '@tributary/core';
import type { ForwardChunk } from '@tributary/forward-protocol';
import type { AckedChunkIds } from '../acked-chunk-ids';
import { BufferErrorCode, type OpenChunk, type SealedChunk } from '../chunk-buffer';
import type { ChunkStorage, StorageEvents } from '../chunk-storage';
import { CHUNK_ID_BYTES, type ChunkIds, JoinScratch, chunkFileName, encodeAppend, parseChunkFile, sendParts } from './chunk-file';
import { Descriptors } from './descriptors';
import { type FsyncMode, type FsyncPolicy, fsyncPolicy } from './fsync-policy';
import { ReadPool } from './read-pool';
import { SpareFiles } from './spare-files';
import { WriteCache } from './write-cache';

/** Deleting a delivered chunk's file is retried this often (backing off from 1 s), then left for the next start. */
const UNLINK_ATTEMPTS = 5;

export interface DiskStorageOptions {
  /** The buffer directory. */
  path: string;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  /** Entries of recent chunks kept in memory for sending (bytes, all chunks together). 0: always read back. */
  memoryCacheBytes: number;
  chunkLimitBytes: number;
  fs: Filesystem;
}

export class DiskStorage implements ChunkStorage {
  private readonly policy: FsyncPolicy;
  private readonly fs: Filesystem;
  private readonly descriptors: Descriptors;
  private readonly spares: SpareFiles;
  private readonly cache: WriteCache;
  private readonly joins: JoinScratch;
  private readonly reads: ReadPool;
  private readonly unlinkRetries = new Set<NodeJS.Timeout>();
  private closing: Promise<void> | null = null;
  /** The payloads written since the last `settleWrites`, for the write cache: views of the parts' entries. */
  private readonly unsettled: Array<{ key: string; first: boolean; payload: Buffer }> = [];

  constructor(
    private readonly options: DiskStorageOptions,
    private readonly ackedIds: AckedChunkIds,
    private readonly events: StorageEvents,
  ) {
    this.fs = options.fs;
    this.policy = fsyncPolicy(options.fsync, options.fsyncIntervalMs);
    this.descriptors = new Descriptors(this.fs, this.policy, () => ackedIds.fd, events);
    this.spares = new SpareFiles(this.fs, options.path, events);
    this.cache = new WriteCache(options.memoryCacheBytes, options.chunkLimitBytes);
    this.reads = new ReadPool(this.fs, options.chunkLimitBytes);
    // One write holds less than twice the limit (a chunk's parts until the limit, then one hand-off of at most the limit).
    this.joins = new JoinScratch(2 * options.chunkLimitBytes);
    ackedIds.onError = (op, err, what) => events.ioError(op, err, what);
    this.spares.refill();
  }

  get idsAfterSync(): boolean {
    return this.policy.idsAfterSync;
  }

  newId(): Buffer {
    const spare = this.spares.take();
    if (!spare) return randomBytes(CHUNK_ID_BYTES);
    this.descriptors.add(spare.id.toString('hex'), spare.fd);
    return spare.id;
  }

  write(chunk: OpenChunk, parts: ForwardChunk[], isNew: boolean, ids: ChunkIds | null): number {
    const key = chunk.id.toString('hex');
    let fd = this.descriptors.get(key);
    try {
      if (fd === undefined) {
        fd = this.fs.openSync(this.file(chunk.id), 'a'); // no spare was ready
        this.descriptors.add(key, fd);
      }
      const { buffers, bytes, payloads } = encodeAppend(chunk, parts, isNew, this.joins.join, ids);
      writevAllSync(this.fs, fd, buffers, bytes);
      this.descriptors.written(fd);
      // Views of the parts' entries are copied into the write cache by `settleWrites`, once the group's ids are
      // recorded; the join scratch is the next write's, so its bytes are copied now.
      for (let i = 0; i < payloads.length; i++) {
        const first = isNew && i === 0;
        if (this.joins.holds(payloads[i])) this.cache.remember(key, first, payloads[i]);
        else this.unsettled.push({ key, first, payload: payloads[i] });
      }
      return bytes;
    } catch (err) {
      this.events.ioError('write', err as NodeJS.ErrnoException, 'An append was refused (no ack); it is cut off again.');
      throw new RetryableError(
        BufferErrorCode.Io,
        `Writing to the buffer file ${this.file(chunk.id)} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  settleWrites(): void {
    for (const { key, first, payload } of this.unsettled) {
      try {
        this.cache.remember(key, first, payload);
      } catch (err) {
        // The events are written and their ids recorded: the chunk is read back from its file instead.
        this.cache.forget(key);
        this.events.ioError(
          'cache',
          err as NodeJS.ErrnoException,
          "A chunk's entries could not be kept in memory; it is read back from its file.",
        );
      }
    }
    this.unsettled.length = 0;
  }

  undo(chunk: OpenChunk, isNew: boolean): boolean {
    const key = chunk.id.toString('hex');
    // A group is undone whole: none of its writes is cached.
    this.unsettled.length = 0;
    this.cache.forget(key);
    if (isNew) {
      const fd = this.descriptors.remove(key);
      if (fd === undefined) return true;
      // Nothing in the file was acked: it goes (emptied first, so that should the delete fail, the next start
      // finds an empty file and removes it quietly).
      try {
        this.fs.ftruncateSync(fd, 0);
      } catch (err) {
        // The delete below removes it anyway; failing that, the next start removes a chunk file without events.
        this.events.ioError('truncate', err as NodeJS.ErrnoException, 'The file of a chunk whose first write failed could not be emptied.');
      }
      this.descriptors.closeUnsynced(fd);
      this.fs
        .unlink(this.file(chunk.id))
        .catch((err: NodeJS.ErrnoException) =>
          this.events.ioError('unlink', err, 'The file of a chunk whose first write failed was left; the next start removes it.'),
        );
      return true;
    }
    const fd = this.descriptors.get(key);
    if (fd === undefined) return true;
    try {
      this.fs.ftruncateSync(fd, chunk.stored);
      return true;
    } catch (err) {
      this.events.ioError('truncate', err as NodeJS.ErrnoException, 'A failed append could not be cut off; its chunk is sealed as it was.');
      return false;
    }
  }

  recordIds(hashes: Uint32Array, n: number, now: number): void {
    if (!n) return;
    this.ackedIds.recordHashes(hashes, n, now);
    const fd = this.ackedIds.fd;
    if (fd !== null) this.descriptors.written(fd);
  }

  sync(): Promise<void> {
    return this.descriptors.syncForAck();
  }

  seal(chunk: OpenChunk): void {
    this.descriptors.seal(chunk.id.toString('hex'));
  }

  async read(chunk: SealedChunk): Promise<Buffer[]> {
    const key = chunk.id.toString('hex');
    const cached = this.cache.get(key);
    if (cached) return cached;
    // Checksums and entries were verified when the data was accepted or recovered; a read only splits records.
    const data = await this.reads.read(key, this.file(chunk.id), chunk.stored);
    const parsed = parseChunkFile(data, false);
    if (!parsed) throw new RetryableError(BufferErrorCode.Io, `Buffer file ${this.file(chunk.id)} became unreadable.`);
    return sendParts(data, parsed.entries);
  }

  async remove(chunk: SealedChunk): Promise<void> {
    this.release(chunk);
    const path = this.file(chunk.id);
    await this.fs.unlink(path).catch((err: NodeJS.ErrnoException) => this.unlinkFailed(path, err, 1));
  }

  removeNow(chunk: SealedChunk): void {
    this.release(chunk);
    const path = this.file(chunk.id);
    try {
      this.fs.unlinkSync(path);
    } catch (err) {
      this.unlinkFailed(path, err as NodeJS.ErrnoException, 1);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    for (const t of this.unlinkRetries) clearTimeout(t);
    this.unlinkRetries.clear();
    await this.descriptors.close();
    await this.spares.close();
    this.cache.clear();
    this.reads.clear();
  }

  private file(id: Buffer): string {
    return join(this.options.path, chunkFileName(id));
  }

  /** The chunk's file is about to go: its descriptor, cached entries and read buffer are released, without a sync. */
  private release(chunk: SealedChunk): void {
    const key = chunk.id.toString('hex');
    this.cache.forget(key);
    this.reads.release(key);
    this.descriptors.released(key);
  }

  /**
   * A delivered (or dropped) chunk's file could not be deleted: its space is
   * counted free all the same, and the delete is retried with backoff. Left
   * in place, the next start would send the chunk again under its id, which
   * the aggregators recognise.
   */
  private unlinkFailed(path: string, err: NodeJS.ErrnoException, attempt: number): void {
    if (err.code === 'ENOENT') return;
    const last = attempt >= UNLINK_ATTEMPTS || this.closing !== null;
    this.events.ioError(
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
}
