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
 * from the chunk's id, where the piece starts and a crc32 of its entries
 * (`pieceId`): the buffer remembers it as soon as that piece is stored. A
 * resend of the chunk (after a later piece was refused, after a crash
 * between pieces, or while the first send is still being stored) is cut the
 * same way, and only the pieces the buffer lacks are stored again. A piece
 * is left out only when the same bytes at the same place of a chunk under
 * the same id were stored: a resend cut differently, another chunk under the
 * same id, or filters that kept other events this time give other ids, and
 * their pieces are stored (duplicates at worst, never a loss).
 *
 * A chunk may be cut twice on the forwarder: at its input, then after the
 * filters when they grew its records past the limit. Each cut has its own
 * separator in the ids it makes (`CutStage`). At the second cut only the last
 * input piece (the one that carries the whole chunk's key, `resendHash`)
 * keeps its id on its last piece; an earlier input piece cut again gives
 * every piece an id of its own, since what the filters made of it may differ
 * from send to send. A merged run's ids (`ForwardChunk.ids`) stay on its
 * last piece with no piece ids.
 */
import { crc32 } from 'node:zlib';
import { type ForwardChunk, forEachEntry } from '@tributary/forward-protocol';

/** Where a chunk is cut: at its input, or on the forwarder after the filters (records they grew past the limit). */
export type CutStage = 'input' | 'filtered';

/** The separator of each cut's piece ids: control characters no id Fluentd, Fluent Bit, fluent-logger or the tail input make holds. */
const SEPARATORS: Record<CutStage, string> = { input: '\u0000', filtered: '\u0001' };

/**
 * The id of the piece `entries` that starts at byte `start` of the entries of
 * the chunk `chunkId`, cut at `stage`. The buffer's key adds the piece's tag,
 * count and size: together they name these very events at this place of
 * this chunk (identical events elsewhere in it have another `start`).
 */
export function pieceId(chunkId: string, stage: CutStage, start: number, entries: Buffer): string {
  return `${chunkId}${SEPARATORS[stage]}${start}:${(crc32(entries) >>> 0).toString(16)}`;
}

/** Splits one chunk at entry boundaries into pieces of at most `max` bytes (an entry larger than `max` is a piece alone), cut at `stage`. */
export function splitChunk(chunk: ForwardChunk, max: number, stage: CutStage = 'input'): ForwardChunk[] {
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
    // The last piece keeps the id of a client's chunk (cut at its input, or the last input piece that carries its key).
    const named = stage === 'input' || chunk.resendHash !== undefined ? pieces.length - 1 : pieces.length;
    for (let i = 0; i < named; i++) {
      const p = pieces[i];
      p.chunkId = pieceId(chunk.chunkId, stage, p.entries.byteOffset - chunk.entries.byteOffset, p.entries);
    }
    if (named < pieces.length) tail.chunkId = chunk.chunkId;
  }
  if (chunk.ack) tail.ack = chunk.ack;
  if (chunk.resendHash) tail.resendHash = chunk.resendHash;
  if (chunk.ids) tail.ids = chunk.ids;
  return pieces;
}

/** Groups `chunks` into hand-offs holding at most `max` entry bytes per tag, in order, cut at `stage`. */
export function toHandOffs(chunks: ForwardChunk[], max: number, stage: CutStage = 'input'): ForwardChunk[][] {
  let total = 0;
  for (const c of chunks) total += c.entries.length;
  if (total <= max) return [chunks];
  const handOffs: ForwardChunk[][] = [];
  let current: ForwardChunk[] = [];
  let perTag = new Map<string, number>();
  for (const chunk of chunks) {
    for (const piece of splitChunk(chunk, max, stage)) {
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

/** `consume` for each hand-off in turn, cut at `stage`; rejects with the first failure (later pieces are not offered). */
export async function consumeInPieces(
  consume: (chunks: ForwardChunk[]) => Promise<void>,
  chunks: ForwardChunk[],
  max: number | undefined,
  stage: CutStage = 'input',
): Promise<void> {
  if (max === undefined) return consume(chunks);
  for (const handOff of toHandOffs(chunks, max, stage)) await consume(handOff);
}
