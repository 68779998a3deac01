import { type ForwardChunk, countEntries, encodeEntry } from '@tributary/forward-protocol';
import { consumeInPieces, pieceId, splitChunk, toHandOffs } from './pieces';

const entry = (n: number) => encodeEntry(1700000000, { n, pad: 'x'.repeat(90) });
function chunk(tag: string, from: number, count: number, chunkId?: string): ForwardChunk {
  const entries = Buffer.concat(Array.from({ length: count }, (_, i) => entry(from + i)));
  return { tag, entries, count, mode: 'packed', ...(chunkId ? { chunkId, ack: Buffer.from(chunkId) } : {}) };
}

test('a chunk over the limit is split at entry boundaries, every event kept once, the chunk id on the last piece, a piece id on each other', () => {
  const c = chunk('a', 0, 100, 'id1');
  const size = entry(0).length;
  const pieces = splitChunk(c, size * 7 + 3);
  expect(pieces.map((p) => p.count)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2]);
  for (const p of pieces) {
    expect(p.entries.length).toBeLessThanOrEqual(size * 7 + 3);
    expect(countEntries(p.entries)).toBe(p.count);
  }
  expect(Buffer.concat(pieces.map((p) => p.entries)).equals(c.entries)).toBe(true);
  const last = pieces[pieces.length - 1];
  expect(last.chunkId).toBe('id1');
  expect(last.ack).toEqual(Buffer.from('id1'));
  // each other piece: the chunk's id and where the piece starts in the chunk's entries
  expect(pieces.slice(0, -1).map((p) => p.chunkId)).toEqual(
    pieces.slice(0, -1).map((_, i) => pieceId('id1', 'input', i * 7 * size, pieces[i].entries)),
  );
  expect(pieces.slice(0, -1).every((p) => p.ack === undefined)).toBe(true);
  // The same chunk splits the same way again: a resend's pieces have the same ids.
  expect(splitChunk(c, size * 7 + 3).map((p) => p.chunkId)).toEqual(pieces.map((p) => p.chunkId));
  // Cut again after the filters (the forwarder's second cut, at 'filtered'), the last piece too: no id twice.
  const first = splitChunk(chunk('a', 0, 98, 'id1'), size * 7 + 3);
  expect(first[first.length - 1].count).toBe(7);
  const second = first.flatMap((p) => splitChunk(p, size * 3, 'filtered'));
  const ids = second.map((p) => p.chunkId);
  expect(new Set(ids).size).toBe(ids.length);
  expect(second.reduce((n, p) => n + p.count, 0)).toBe(98);
  // Cut at another size, no piece gets an id the first cut gave (a range of other events under the same id).
  const other = new Set(splitChunk(c, size * 5 + 3).map((p) => p.chunkId));
  expect(pieces.filter((p) => p.chunkId !== 'id1' && other.has(p.chunkId))).toEqual([]);
  // The same events elsewhere in a chunk (identical entries) are another piece.
  const same = { ...chunk('a', 0, 1, 'idx'), entries: Buffer.concat(Array.from({ length: 14 }, () => entry(0))), count: 14 };
  const twins = splitChunk(same, size * 7 + 3).map((p) => p.chunkId);
  expect(twins[0]).not.toBe(twins[1]);
  // Cut again after the filters, an input piece that is not the chunk's last (no resendHash) names its last piece too.
  const inner = splitChunk(first[0], size * 3, 'filtered');
  expect(inner.map((p) => p.chunkId).filter((id) => id === first[0].chunkId)).toEqual([]);
  // A chunk without an id gets no piece ids.
  expect(splitChunk(chunk('a', 0, 100), size * 7 + 3).every((p) => p.chunkId === undefined)).toBe(true);
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
