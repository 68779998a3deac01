import { segmentsToDelete } from './retention';
import type { Segment } from './segments';

const HOUR = 3_600_000;
const NOW = 10 * HOUR;
/** Segments of 10 records and 100 bytes each, created an hour apart, the newest now. */
const segs = (n: number): Segment[] =>
  Array.from({ length: n }, (_, i) => ({
    base: i * 10,
    path: `s${i}`,
    records: 10,
    bytes: 100,
    positions: [],
    createdAt: NOW - (n - 1 - i) * HOUR,
  }));

test('over the size limit: the oldest segments every group committed past go, down to the limit', () => {
  expect(segmentsToDelete(segs(5), [50], { retentionBytes: 250, retentionMs: 100 * HOUR }, NOW)).toBe(3);
  expect(segmentsToDelete(segs(5), [50], { retentionBytes: 500, retentionMs: 100 * HOUR }, NOW)).toBe(0);
});

test('the slowest group bounds it: a segment is deleted only when the next one starts at or before its commit', () => {
  const limits = { retentionBytes: 0, retentionMs: 100 * HOUR };
  expect(segmentsToDelete(segs(5), [50, 19], limits, NOW)).toBe(1);
  expect(segmentsToDelete(segs(5), [50, 20], limits, NOW)).toBe(2);
  expect(segmentsToDelete(segs(5), [50, 0], limits, NOW)).toBe(0);
});

test('over the age limit only the segments older than it go, even under the size limit', () => {
  expect(segmentsToDelete(segs(5), [50], { retentionBytes: 1e9, retentionMs: 2.5 * HOUR }, NOW)).toBe(2);
});

test('the segment appended to is never deleted, nor anything when no group ever read', () => {
  const limits = { retentionBytes: 0, retentionMs: 0 };
  expect(segmentsToDelete(segs(3), [30], limits, NOW)).toBe(2);
  expect(segmentsToDelete(segs(1), [10], limits, NOW)).toBe(0);
  expect(segmentsToDelete(segs(3), [], limits, NOW)).toBe(0);
});
