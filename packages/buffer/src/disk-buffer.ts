/**
 * Crash-safe disk buffer: BaseBuffer's queueing, limits and overflow policy
 * over DiskStorage, one append-only file per chunk named by the chunk's id,
 * so the id survives restarts. Its parts, each in disk/:
 *
 * - chunk-file.ts: the file format (records, header, torn tail), pure;
 * - recovery.ts: reading back and repairing the files at open, with a report;
 * - fsync-policy.ts and descriptors.ts: `always` vs `interval`, and the
 *   open → append → fdatasync → close lifecycle that carries it out;
 * - spare-files.ts: files created ahead of time for new chunks;
 * - write-cache.ts and read-pool.ts: sending without reads, or with pooled ones;
 * - disk-storage.ts: the ChunkStorage those make up.
 *
 * An append resolves after its bytes are written (page cache: survives
 * `kill -9`), and after fdatasync under `fsync: always`; under `interval`,
 * dirty files are synced every `fsyncIntervalMs` (the window a power loss can
 * cost). A failed write refuses the append and is cut off again; a failed
 * fdatasync refuses every later append until a restart; both are reported
 * through `onIoError`.
 */
import { type Filesystem, realFilesystem } from '@tributary/core';
import { AckedChunkIds, type AckedIdsWindow, type JournalErrorReport } from './acked-chunk-ids';
import { BaseBuffer } from './base-buffer';
import type { BufferLimits, SealedChunk } from './chunk-buffer';
import { DiskStorage, type DiskStorageOptions } from './disk/disk-storage';
import { type RecoveryReport, recoverChunks } from './disk/recovery';

export type { RecoveryReport };

/** The limits, the storage's options (see DiskStorageOptions), and the acked chunk id window. */
export interface DiskBufferOptions extends BufferLimits, Omit<DiskStorageOptions, 'fs'> {
  /** Client chunk ids acked, remembered (and journaled beside the chunks) for this window. */
  ackedIds: AckedIdsWindow;
  /** The filesystem (tests inject faults through it). */
  fs?: Filesystem;
  /**
   * Storage errors from the open on (the buffer's `onIoError` from then on,
   * until its owner sets another): those of an open that fails, other than
   * the one it rejects with, are reported only here.
   */
  onIoError?: (op: string, err: Error, what: string) => void;
  /**
   * The chunk files' reports, as soon as they are read back and repaired
   * (before the acked-id journal opens): an open that fails after that has
   * still said what it cut off, set aside or removed.
   */
  onRecovered?: (reports: RecoveryReport[]) => void;
}

export class DiskBuffer extends BaseBuffer {
  private constructor(options: DiskBufferOptions, fs: Filesystem, ackedIds: AckedChunkIds, recovered: SealedChunk[]) {
    super(options, ackedIds, (events) => new DiskStorage({ ...options, fs }, ackedIds, events), recovered);
  }

  /**
   * Opens the buffer directory, recovering every chunk (and acked chunk id)
   * left by an earlier run: the chunks found are queued for sending, and each
   * chunk file read gets a report; `idsRemembered` counts the client chunk
   * ids found beside recovered events that the journal had not kept. Rejects
   * when the directory cannot be read or repaired.
   */
  static async open(options: DiskBufferOptions): Promise<{ buffer: DiskBuffer; recovered: RecoveryReport[]; idsRemembered: number }> {
    const fs = options.fs ?? realFilesystem;
    const report: JournalErrorReport = (op, err, what) => options.onIoError?.(op, err, what);
    await fs.mkdir(options.path);
    // The chunk files first: the ids written beside their events are merged into the acked-id memory as it opens.
    const found = await recoverChunks(fs, options.path);
    options.onRecovered?.(found.reports);
    const ackedIds = await AckedChunkIds.open(fs, options.path, options.ackedIds, report, Date.now(), found.ids);
    const idsRemembered = ackedIds.recoveredFromChunks;
    const buffer = new DiskBuffer(options, fs, ackedIds, found.chunks);
    buffer.onIoError = options.onIoError;
    return { buffer, recovered: found.reports, idsRemembered };
  }
}
