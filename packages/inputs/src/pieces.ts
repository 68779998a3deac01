/**
 * Hands a batch to the buffer in pieces the aggregators' default limits
 * accept. The buffer seals an open chunk once it holds `chunkLimitBytes`,
 * after adding a whole batch's events for that tag; so a sealed chunk stays
 * below twice the limit as long as no single hand-off adds more than the
 * limit per tag, and no single event is larger than the limit (the door
 * refuses those: `maxEventBytes`).
 *
 * A batch within the limit goes through as is, in one call. A larger one is
 * split at entry boundaries into hand-offs of at most `chunkLimitBytes` per
 * tag, consumed one after the other; the promise resolves once every piece
 * was accepted.
 *
 * A chunk's id stays on its last piece, so the chunk counts as accepted only
 * once every piece is. Each earlier piece carries an id of its own, derived
 * from the chunk's (`pieceId`): the buffer remembers it as soon as that piece
 * is stored. A resend of the chunk (after a later piece was refused, after a
 * crash between pieces, or while the first send is still being stored) is
 * split the same way, and only the pieces the buffer lacks are stored again.
 * The split is the same only under the same `chunkLimitBytes` and, on the
 * forwarder, filters that give the same output for the same input. A merged
 * run's ids (`ForwardChunk.ids`) stay on its last piece with no piece ids.
 */
import { type ForwardChunk, forEachEntry } from '@tributary/forward-protocol';

/**
 * The id of piece `index` (not the last) of the chunk `chunkId`. NUL is in no
 * id Fluentd, Fluent Bit, fluent-logger or the tail input make (base64, hex
 * or plain text), and the buffer's key adds the piece's tag, count and size.
 */
export function pieceId(chunkId: string, index: number): string {
  return `${chunkId}\u0000${index}`;
}

/** Splits one chunk at entry boundaries into pieces of at most `max` bytes (an entry larger than `max` is a piece alone). */
export function splitChunk(chunk: ForwardChunk, max: number): ForwardChunk[] {
  if (chunk.entries.length <= max) return [chunk];
  const pieces: ForwardChunk[] = [];
  let begin = 0;
  let last = 0;
  let count = 0;
  const cut = (end: number) => {
    pieces.push({ tag: chunk.tag, entries: chunk.entries.subarray(begin, end), count, mode: chunk.mode, signal: chunk.signal });
    begin = end;
    count = 0;
  };
  forEachEntry(chunk.entries, (start, end) => {
    if (end - begin > max && count > 0) cut(start);
    count++;
    last = end;
  });
  if (count > 0) cut(last);
  const tail = pieces[pieces.length - 1];
  if (chunk.chunkId !== undefined) {
    tail.chunkId = chunk.chunkId;
    for (let i = 0; i < pieces.length - 1; i++) pieces[i].chunkId = pieceId(chunk.chunkId, i);
  }
  if (chunk.ack) tail.ack = chunk.ack;
  if (chunk.ids) tail.ids = chunk.ids;
  return pieces;
}

/** Groups `chunks` into hand-offs holding at most `max` entry bytes per tag, in order. */
export function toHandOffs(chunks: ForwardChunk[], max: number): ForwardChunk[][] {
  let total = 0;
  for (const c of chunks) total += c.entries.length;
  if (total <= max) return [chunks];
  const handOffs: ForwardChunk[][] = [];
  let current: ForwardChunk[] = [];
  let perTag = new Map<string, number>();
  for (const chunk of chunks) {
    for (const piece of splitChunk(chunk, max)) {
      const held = perTag.get(piece.tag) ?? 0;
      if (held > 0 && held + piece.entries.length > max) {
        handOffs.push(current);
        current = [];
        perTag = new Map();
      }
      current.push(piece);
      perTag.set(piece.tag, (perTag.get(piece.tag) ?? 0) + piece.entries.length);
    }
  }
  if (current.length) handOffs.push(current);
  return handOffs;
}

/** `consume` for each hand-off in turn; rejects with the first failure (later pieces are not offered). */
export async function consumeInPieces(
  consume: (chunks: ForwardChunk[]) => Promise<void>,
  chunks: ForwardChunk[],
  max: number | undefined,
): Promise<void> {
  if (max === undefined) return consume(chunks);
  for (const handOff of toHandOffs(chunks, max)) await consume(handOff);
}
