/**
 * Cross-node dedupe of chunks. The key is the sender's chunk id plus a hash
 * and length of the entries, so a client that reuses ids for different data
 * (Fluent Bit's ids are content hashes; buggy clients repeat) is never
 * silently dropped.
 *
 * Protocol per chunk: `claim` before writing (short-lived, owner recorded);
 * `markDone` after the durable log accepted it (long TTL); `release` when the
 * write failed. A resend of a done chunk is acked without writing; a resend
 * while another node holds the claim waits, then gets no ack.
 */
import { crc32 } from 'node:zlib';

export type ClaimResult = 'claimed' | 'done' | 'busy';

export interface DedupeStore {
  readonly kind: 'redis' | 'embedded';
  claim(keys: string[]): Promise<ClaimResult[]>;
  /**
   * `markDone` and `release` never reject: a store counts and logs its own
   * failures (and retries a failed mark), so callers may leave them unawaited
   * (ingest marks off the ack path); a rejection would end the process as an
   * unhandled one.
   */
  markDone(keys: string[]): Promise<void>;
  release(keys: string[]): Promise<void>;
  /**
   * Called once before the first claim with the dedupe keys this node's log
   * retains, oldest first. The store marks them done (a claim this node held
   * on one when it stopped becomes a done mark, so a resend elsewhere is
   * acked without a second write) and keeps the newest as the source it
   * rebuilds from if the shared store loses its memory. Resolves once the
   * store is ready for claims, or once it gave up for now and will keep
   * trying in the background (the failure is then counted and logged).
   */
  start(logged: readonly string[]): Promise<void>;
  /** Why claims cannot be exact right now (for /readyz), or null. */
  problem(): string | null;
  close(): Promise<void>;
}

/** `crc` is crc32(entries) when the caller has it (it is reused for the log record's checksum). */
export function dedupeKey(chunkId: string, entries: Buffer, crc: number = crc32(entries) >>> 0): string {
  return `${chunkId}:${crc.toString(16)}:${entries.length}`;
}
