/**
 * The forwarder's use of a chain: a hand-off's chunks through the filters
 * before the buffer, so a dropped event costs no disk. A chunk no filter
 * matches is passed on as it is (not decoded); a chunk left with no event
 * is not passed on, unless it carries a client chunk id (or a merged run of
 * acked messages' ids): then it goes on empty, so the buffer remembers the id as stored and a resend of the acked
 * chunk is not buffered again.
 */
import type { FilterChain } from './chain';
import type { Output } from './output';

/** With `into` (from an OutputPool), changed chunks' entries are views of it: valid until it is released. */
export function filterChunks<C extends { tag: string; entries: Buffer; count: number; chunkId?: string; ids?: unknown }>(
  chain: FilterChain,
  chunks: C[],
  into?: Output,
): C[] {
  if (!chain.size) return chunks;
  const out: C[] = [];
  for (const c of chunks) {
    const kept = chain.run(c.tag, c.entries, 0, c.entries.length, into);
    if (!kept) out.push(c);
    // new entries: a sender's gzip of the old ones (ForwardChunk.gzipped) no longer matches them
    else if (kept.indexes.length || c.chunkId !== undefined || c.ids !== undefined)
      out.push({ ...c, entries: kept.entries, count: kept.indexes.length, gzipped: undefined });
  }
  return out;
}
