import { type ForwardChunk, countEntries, encodeEntry } from '@tributary/forward-protocol';
import { consumeInPieces, splitChunk, toHandOffs } from './pieces';

const entry = (n: number) => encodeEntry(1700000000, { n, pad: 'x'.repeat(90) });
function chunk(tag: string, from: number, count: number, chunkId?: string): ForwardChunk {
  const entries = Buffer.concat(Array.from({ length: count }, (_, i) => entry(from + i)));
  return { tag, entries, count, mode: 'packed', ...(chunkId ? { chunkId, ack: Buffer.from(chunkId) } : {}) };
}

test('a chunk over the limit is split at entry boundaries, every event kept once, the chunk id on the last piece', () => {
  const c = chunk('a', 0, 100, 'id1');
  const size = entry(0).length;
  const pieces = splitChunk(c, size * 7 + 3);
  expect(pieces.map((p) => p.count)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2]);
  for (const p of pieces) {
    expect(p.entries.length).toBeLessThanOrEqual(size * 7 + 3);
    expect(countEntries(p.entries)).toBe(p.count);
  }
  expect(Buffer.concat(pieces.map((p) => p.entries)).equals(c.entries)).toBe(true);
  expect(pieces.filter((p) => p.chunkId !== undefined).map((p) => p === pieces[pieces.length - 1])).toEqual([true]);
});

test('hand-offs hold at most the limit per tag; a batch within the limit is passed whole', () => {
  const small = [chunk('a', 0, 3), chunk('b', 0, 3)];
  expect(toHandOffs(small, 10_000)[0]).toBe(small);
  const limit = entry(0).length * 10;
  // Two same-tag requests of 8 and 25 events (the 1 MB + 16.3 MB merge, scaled down).
  const handOffs = toHandOffs([chunk('a', 0, 8), chunk('a', 8, 25), chunk('b', 0, 4)], limit);
  for (const h of handOffs) {
    const perTag = new Map<string, number>();
    for (const c of h) perTag.set(c.tag, (perTag.get(c.tag) ?? 0) + c.entries.length);
    for (const bytes of perTag.values()) expect(bytes).toBeLessThanOrEqual(limit);
  }
  expect(handOffs.flat().reduce((n, c) => n + c.count, 0)).toBe(37);
});

test('consumeInPieces stops at the first refused piece and rejects with its error', async () => {
  const seen: number[] = [];
  const consume = async (chunks: ForwardChunk[]) => {
    seen.push(chunks.reduce((n, c) => n + c.count, 0));
    if (seen.length === 2) throw new Error('full');
  };
  await expect(consumeInPieces(consume, [chunk('a', 0, 40)], entry(0).length * 10)).rejects.toThrow('full');
  expect(seen).toEqual([10, 10]);
});
