import { Codes } from '@tributary/core';
/**
 * The forwarder's buffer: events are appended per tag into an open chunk,
 * chunks are sealed by size or age, sealed chunks are sent and deleted once
 * acked. A chunk's 16-byte id is fixed when the chunk is created and never
 * changes — across retries, nodes and restarts — so aggregators can recognise
 * a resend.
 */
import type { ForwardChunk } from '@tributary/forward-protocol';

/** A chunk still taking events (one per tag). */
export interface OpenChunk {
  /** 16 random bytes, fixed at creation. */
  id: Buffer;
  tag: string;
  count: number;
  /** Size of the entries in bytes. */
  bytes: number;
  /** Bytes held in storage, framing included. */
  stored: number;
  createdAt: number;
}

/** A chunk closed to new events, waiting to be sent or in flight. */
export interface SealedChunk extends OpenChunk {
  /** Send attempts so far. */
  attempts: number;
  /** Not to be sent before this time (ms since epoch). */
  notBefore: number;
}

export type OverflowPolicy = 'block' | 'drop_oldest';

export interface BufferLimits {
  /** Total bytes held (open and sealed chunks) before the overflow policy applies. */
  maxBytes: number;
  /** A chunk is sealed once it holds this many bytes of entries. */
  chunkLimitBytes: number;
  /** A chunk is sealed once it is this old. */
  flushIntervalMs: number;
  overflow: OverflowPolicy;
}

export interface BufferStats {
  bytes: number;
  chunks: number;
  events: number;
  oldestCreatedAt: number | null;
  droppedEvents: number;
  droppedChunks: number;
}

export interface ChunkBuffer {
  /**
   * Appends chunks' events, all or none. Resolves once they are safe by the
   * buffer's policy (written, and fsynced under `fsync: always`), with their
   * client chunk ids remembered; a chunk whose id was acked before is not
   * stored again (see `skipAcked`). A chunk with no entries (filters dropped
   * all its events) stores nothing but still has its id remembered. Under
   * `block` it waits for space. Rejects when a write fails (nothing stored),
   * when storage can no longer be trusted (`problem`), or when closing; a
   * batch refused after its write (an earlier group's or its own fdatasync
   * failed, its ids could not be recorded) may stay stored, and its resend
   * is stored again (at-least-once). Resolves with the number of client
   * chunk ids (chunks, pieces of one, merged messages) it left out because
   * they were stored before.
   *
   * The chunks' entries are the caller's again once the promise settled
   * (a reused request or staging buffer): the buffer keeps no view of them
   * (the disk buffer's write cache and the memory buffer keep copies).
   */
  append(chunks: ForwardChunk[]): Promise<number>;
  /**
   * The chunks to store: those whose client chunk id was not acked within the
   * remembered window. A chunk whose id an append in progress carries waits
   * for it: left out when it succeeds, the rejection when it fails. Inputs
   * that split a client chunk into pieces call this on the whole chunks first.
   */
  skipAcked(chunks: ForwardChunk[]): Promise<ForwardChunk[]>;
  /** Why appends are refused or failing now, or null (for /readyz). */
  problem(): string | null;
  /** True when an append would have to wait for space (for HTTP 503). */
  isFull(): boolean;
  /** The oldest sealed chunk that is not in flight and due, marked in flight; null when none. */
  take(now?: number): SealedChunk | null;
  /** The entries of a taken chunk, as stored (one part per append; concatenate for one buffer). */
  read(chunk: SealedChunk): Promise<Buffer[]>;
  /** The chunk was delivered: forget it and free its space. */
  ack(chunk: SealedChunk): Promise<void>;
  /** The chunk was not delivered: back to the queue, not before `notBefore`. */
  release(chunk: SealedChunk, notBefore: number): void;
  /** Seals open chunks old enough (or all with `force`); returns how many were sealed. */
  sealDue(now: number, force?: boolean): number;
  /** Called whenever a chunk becomes ready to send. */
  onReady(listener: () => void): void;
  stats(): BufferStats;
  /** Seals everything, syncs and releases files. Pending appends reject. */
  close(): Promise<void>;
}

export const BufferErrorCode = {
  Full: Codes.TRB_BUF_FULL,
  Io: Codes.TRB_BUF_IO,
  Closed: Codes.TRB_BUF_CLOSED,
  /** A failed fdatasync: no append is accepted until a restart. */
  Broken: Codes.TRB_BUF_BROKEN,
  /** A merged run of acked messages raced a resend of some of its ids: refused, resent (`partition`). */
  Resent: Codes.TRB_BUF_RESENT,
} as const;
