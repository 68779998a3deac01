/**
 * Where a buffer's chunks live: the one seam between the queueing, limits and
 * overflow policy (BaseBuffer) and the bytes (memory or disk). BaseBuffer
 * does all accounting and decides when to write, undo, seal, sync and remove;
 * a storage only keeps bytes and says what it costs.
 */
import type { ForwardChunk } from '@tributary/forward-protocol';
import type { OpenChunk, SealedChunk } from './chunk-buffer';
import type { ChunkIds } from './disk/chunk-file';

export interface ChunkStorage {
  /**
   * True when an append's acked chunk ids are recorded only once its events
   * are synced, so no id is kept whose events a power loss could take.
   */
  readonly idsAfterSync: boolean;
  /** The id of a new chunk: 16 random bytes. */
  newId(): Buffer;
  /**
   * Writes one tag's parts of an append to its open chunk (with the chunk's
   * header when new), and beside them the client chunk ids those parts carry
   * (`ids`, where the storage keeps them with the events); returns the bytes stored. Throws (a RetryableError
   * where the storage can say more) when the write failed. It may keep views
   * of the parts' entries until `settleWrites` or `undo`, called in the same
   * synchronous step; after that the caller may reuse their memory.
   */
  write(chunk: OpenChunk, parts: ForwardChunk[], isNew: boolean, ids: ChunkIds | null): number;
  /**
   * Finishes the work the writes since the last call left for after the
   * group's ids are recorded (the disk storage's copies into its write
   * cache): nothing but syscalls then sits between a group's event writes and
   * its id record, the window in which a crash keeps events whose ids it
   * forgets (their resend is stored again). Never throws: the group is
   * written and its ids recorded by then.
   */
  settleWrites(): void;
  /**
   * Cuts a chunk back to what it held before this append's write (a new
   * chunk: gone entirely). False when that failed and the chunk must take no
   * more writes (it then holds a torn record at its end, which readers stop at).
   */
  undo(chunk: OpenChunk, isNew: boolean): boolean;
  /**
   * Remembers the client chunk ids of an append being made safe, as the
   * hashes of their resend keys `hashes[0 … 4n)` (journaled where the storage
   * persists). Throws when that failed.
   */
  recordIds(hashes: Uint32Array, n: number, now: number): void;
  /** Resolves once what was written is as safe as the storage promises before an ack; rejects when it cannot be. */
  sync(): Promise<void>;
  /** The chunk takes no more writes. */
  seal(chunk: OpenChunk): void;
  /** The entries of a sealed chunk, as stored (one part per append, or fewer). */
  read(chunk: SealedChunk): Promise<Buffer[]>;
  /** Deletes a delivered chunk. Never rejects: what cannot be deleted is the storage's to retry and report. */
  remove(chunk: SealedChunk): Promise<void>;
  /** Deletes a chunk before the next write (drop_oldest frees space for it). Never throws, as `remove`. */
  removeNow(chunk: SealedChunk): void;
  /** Releases files and memory once the buffer has sealed and synced everything. Never rejects; safe to call twice. */
  close(): Promise<void>;
}

/** How a storage tells its buffer about trouble it handled itself. */
export interface StorageEvents {
  /** Storage can no longer be trusted (a failed fdatasync): every later append is refused until a restart. */
  fail(reason: string): void;
  /** A storage error, whether it refused an append or was handled: `op` is the step, `what` a sentence on its effect. */
  ioError(op: string, err: Error, what: string): void;
}
