/**
 * Which sealed segments retention deletes (pure): the oldest ones, while
 * every consumer group has committed past them and the log is over its size
 * limit or the segment over its age limit. The segment appended to is never
 * deleted, nor one a group has not read past (a group reading now counts
 * from its registration, so nothing it has not read is deleted).
 */
import type { Segment } from './segments';

export interface RetentionLimits {
  retentionBytes: number;
  retentionMs: number;
}

/** How many of the oldest segments to delete now. */
export function segmentsToDelete(segments: readonly Segment[], committed: Iterable<number>, limits: RetentionLimits, now: number): number {
  let minCommitted = Number.POSITIVE_INFINITY;
  for (const c of committed) minCommitted = Math.min(minCommitted, c);
  if (minCommitted === Number.POSITIVE_INFINITY) return 0; // no group has ever read: nothing is known consumed
  let total = 0;
  for (const s of segments) total += s.bytes;
  let n = 0;
  while (n < segments.length - 1) {
    const seg = segments[n];
    const consumed = segments[n + 1].base <= minCommitted;
    const over = total > limits.retentionBytes || now - seg.createdAt > limits.retentionMs;
    if (!consumed || !over) break;
    total -= seg.bytes;
    n++;
  }
  return n;
}
