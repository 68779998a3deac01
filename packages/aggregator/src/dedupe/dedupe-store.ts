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
  markDone(keys: string[]): Promise<void>;
  release(keys: string[]): Promise<void>;
  /**
   * After a crash: keys this node had appended to its log. Claims this node
   * still holds on them become done marks, so a resend elsewhere is acked
   * without a second write. Returns how many were converted.
   */
  recover(keys: string[]): Promise<number>;
  close(): Promise<void>;
}

/** `crc` is crc32(entries) when the caller has it (it is reused for the log record's checksum). */
export function dedupeKey(chunkId: string, entries: Buffer, crc: number = crc32(entries) >>> 0): string {
  return `${chunkId}:${crc.toString(16)}:${entries.length}`;
}
