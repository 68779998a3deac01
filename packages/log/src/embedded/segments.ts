/**
 * The embedded log's segments: `dir/<base offset, 20 digits>.log`, each
 * holding the records from its base offset on. The last segment is the one
 * appended to; the others are sealed.
 */
import { join } from 'node:path';
import type { Filesystem } from '@tributary/core';
import { bodyKey, scan } from './codec';

export interface Segment {
  /** Offset of the segment's first record. */
  readonly base: number;
  readonly path: string;
  /** Records in the segment. */
  records: number;
  bytes: number;
  /** Byte position of each record, so a read seeks straight to an offset. */
  readonly positions: number[];
  readonly createdAt: number;
}

export function segmentPath(dir: string, base: number): string {
  return join(dir, `${String(base).padStart(20, '0')}.log`);
}

export function newSegment(dir: string, base: number): Segment {
  return { base, path: segmentPath(dir, base), records: 0, bytes: 0, positions: [], createdAt: Date.now() };
}

/**
 * Reads every segment in `dir` once: record positions, the dedupe keys the
 * records carry (oldest first), and the last segment's torn or corrupt tail,
 * which is cut off (truncated on disk) so appends continue after the last
 * whole record.
 */
export async function recoverSegments(fs: Filesystem, dir: string): Promise<{ segments: Segment[]; keys: string[] }> {
  const names = (await fs.readdir(dir)).filter((n) => /^\d{20}\.log$/.test(n)).sort();
  const segments: Segment[] = [];
  const keys: string[] = [];
  for (let i = 0; i < names.length; i++) {
    const path = join(dir, names[i]);
    const last = i === names.length - 1;
    const createdAt = (await fs.stat(path)).mtimeMs;
    const data = await fs.readFile(path);
    const { bodies, positions, end } = scan(data, last);
    if (last && end < data.length) await fs.truncate(path, end);
    segments.push({ base: Number(names[i].slice(0, -4)), path, records: bodies.length, bytes: end, positions, createdAt });
    for (const b of bodies) {
      const key = bodyKey(b);
      if (key) keys.push(key);
    }
  }
  return { segments, keys };
}

/** The segment holding `offset`, or undefined when it is before the first or the log is empty. */
export function segmentOf(segments: readonly Segment[], offset: number): Segment | undefined {
  for (let i = segments.length - 1; i >= 0; i--) if (offset >= segments[i].base) return segments[i];
  return undefined;
}

/**
 * The byte range of the whole records from `offset` on in `seg`, below
 * `readableEnd`: at most `maxRecords`, and at most `maxBytes` unless the first
 * record alone is larger (it is then read by itself). Null when there is
 * nothing to read there.
 */
export function readRange(
  seg: Segment,
  offset: number,
  readableEnd: number,
  maxRecords: number,
  maxBytes: number,
): { start: number; end: number; records: number } | null {
  const first = offset - seg.base;
  const visible = Math.min(seg.records, readableEnd - seg.base);
  if (first < 0 || first >= visible) return null;
  const start = seg.positions[first];
  const endOf = (i: number) => (i + 1 < seg.records ? seg.positions[i + 1] : seg.bytes);
  let last = first + 1;
  while (last < visible && last - first < maxRecords && endOf(last) - start <= maxBytes) last++;
  return { start, end: last < seg.records ? seg.positions[last] : seg.bytes, records: last - first };
}

/** Bytes of the records at `from` and after. */
export function bytesFrom(segments: readonly Segment[], from: number): number {
  let bytes = 0;
  for (const seg of segments) {
    if (seg.base + seg.records <= from) continue;
    const first = Math.max(0, from - seg.base);
    bytes += seg.bytes - (first < seg.records ? seg.positions[first] : seg.bytes);
  }
  return bytes;
}
