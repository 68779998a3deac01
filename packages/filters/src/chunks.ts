/**
 * The forwarder's use of a chain: a hand-off's chunks through the filters
 * before the buffer, so a dropped event costs no disk. A chunk no filter
 * matches is passed on as it is (not decoded); a chunk left with no event
 * is not passed on at all.
 */
import type { FilterChain } from './chain';

export function filterChunks<C extends { tag: string; entries: Buffer; count: number }>(chain: FilterChain, chunks: C[]): C[] {
  if (!chain.size) return chunks;
  const out: C[] = [];
  for (const c of chunks) {
    const kept = chain.run(c.tag, c.entries);
    if (!kept) out.push(c);
    // new entries: a sender's gzip of the old ones (ForwardChunk.gzipped) no longer matches them
    else if (kept.indexes.length) out.push({ ...c, entries: kept.entries, count: kept.indexes.length, gzipped: undefined });
  }
  return out;
}
