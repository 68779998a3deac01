/**
 * The chunk file format: one append-only file per chunk, named by the
 * chunk's id (`<32 hex digits>.chunk`), so the id survives restarts.
 *
 *   file    = record(header) record(entries)*      (framing: see ../records.ts)
 *   header  = JSON { "v": 1, "tag": string, "createdAt": ms }
 *   entries = the forward protocol's packed entries of one append
 *
 * A torn or corrupt record ends what a file holds: parsing stops before it.
 * Pure: bytes in, values out.
 */
import { crc32 } from 'node:zlib';
import { type ForwardChunk, countEntries } from '@tributary/forward-protocol';
import { RECORD_HEADER, frame } from '../records';

export const CHUNK_SUFFIX = '.chunk';
/** A chunk id's length: 16 random bytes. */
export const CHUNK_ID_BYTES = 16;
/** Above this many records, a chunk's entries are joined before sending (see sendParts). */
export const MAX_SEND_PARTS = 8;
/** Up to this many parts of one append are written as one record without joining them first. */
const MAX_WRITE_PARTS = 16;

export function chunkFileName(id: Buffer): string {
  return `${id.toString('hex')}${CHUNK_SUFFIX}`;
}

/** The chunk id a file name stands for (`chunkFileName` reversed), or null when the name is no chunk file's. */
export function chunkIdOfFileName(name: string): Buffer | null {
  if (!name.endsWith(CHUNK_SUFFIX)) return null;
  return Buffer.from(name.slice(0, -CHUNK_SUFFIX.length), 'hex');
}

export interface EncodedAppend {
  /** The records, for one vectored write. */
  buffers: Buffer[];
  /** Bytes in `buffers`. */
  bytes: number;
  /** What the entry records carry (one per record); a joined payload is in `join`'s memory, valid until its next join. */
  payloads: Buffer[];
}

/**
 * Joins many small parts for one write. The forwarder's storage joins into one
 * buffer it reuses (`JoinScratch`): a fresh buffer per group commit (Message
 * mode: every write) was most of its ArrayBuffer allocation, which V8 counts
 * against the old generation's headroom until a GC frees it.
 */
export type Join = (parts: Buffer[], bytes: number) => Buffer;

const concat: Join = (parts, bytes) => Buffer.concat(parts, bytes);

/**
 * The records one append adds to a chunk's file, the header first for a new
 * chunk. A few parts go into one record as they are (checksummed across
 * them); many small ones are joined first (`join`): one checksum call and one
 * iovec beat hundreds. Otherwise the buffers are views of the parts' entries.
 */
export function encodeAppend(
  chunk: { tag: string; createdAt: number },
  parts: ForwardChunk[],
  isNew: boolean,
  join: Join = concat,
): EncodedAppend {
  const buffers: Buffer[] = isNew ? frame([Buffer.from(JSON.stringify({ v: 1, tag: chunk.tag, createdAt: chunk.createdAt }))]) : [];
  let payloads: Buffer[];
  if (parts.length > MAX_WRITE_PARTS) {
    let n = 0;
    for (const p of parts) n += p.entries.length;
    payloads = [
      join(
        parts.map((p) => p.entries),
        n,
      ),
    ];
  } else payloads = parts.map((p) => p.entries);
  buffers.push(...frame(payloads));
  let bytes = 0;
  for (const b of buffers) bytes += b.length;
  return { buffers, bytes, payloads };
}

/**
 * One buffer that joins are copied into, reused from write to write (each
 * is written synchronously before the next join), grown by doubling up to
 * `maxBytes`; a larger join gets a buffer of its own.
 */
export class JoinScratch {
  private buf = Buffer.allocUnsafeSlow(0);

  constructor(private readonly maxBytes: number) {}

  readonly join: Join = (parts, bytes) => {
    if (bytes > this.maxBytes) return Buffer.concat(parts, bytes);
    if (bytes > this.buf.length) this.buf = Buffer.allocUnsafeSlow(Math.min(this.maxBytes, Math.max(bytes, 2 * this.buf.length)));
    let at = 0;
    for (const p of parts) at += p.copy(this.buf, at);
    return this.buf.subarray(0, bytes);
  };
}

export interface ParsedChunkFile {
  tag: string;
  createdAt: number;
  /** The entry records' payloads, views into the data parsed. */
  entries: Buffer[];
  /** Events in `entries`; counted only when verifying (0 otherwise). */
  events: number;
  /** Where the last complete, intact record ends. */
  goodLength: number;
  /** Why parsing stopped before the end, if it did. */
  problem?: string;
}

/**
 * Parses a chunk file's records until the first incomplete or corrupt one.
 * With `verify`, checksums are checked and entries counted (recovery); a read
 * of data verified before only splits records. Null when the header itself
 * is unreadable.
 */
export function parseChunkFile(data: Buffer, verify: boolean): ParsedChunkFile | null {
  let pos = 0;
  let header: { tag: string; createdAt: number } | null = null;
  const entries: Buffer[] = [];
  let events = 0;
  let problem: string | undefined;
  while (pos < data.length) {
    if (pos + RECORD_HEADER > data.length) {
      problem = `torn record header at byte ${pos}`;
      break;
    }
    const len = data.readUInt32BE(pos);
    const sum = data.readUInt32BE(pos + 4);
    const start = pos + RECORD_HEADER;
    if (start + len > data.length) {
      problem = `torn record at byte ${pos} (${len} bytes announced, ${data.length - start} present)`;
      break;
    }
    const payload = data.subarray(start, start + len);
    if (verify && crc32(payload) !== sum) {
      problem = `checksum mismatch in the record at byte ${pos}`;
      break;
    }
    if (!header) {
      try {
        header = JSON.parse(payload.toString('utf8'));
      } catch {
        return null;
      }
    } else {
      if (verify) {
        try {
          events += countEntries(payload);
        } catch (err) {
          problem = `record at byte ${pos} holds invalid entries: ${(err as Error).message}`;
          break;
        }
      }
      entries.push(payload);
    }
    pos = start + len;
  }
  if (!header || typeof header.tag !== 'string') return null;
  return { tag: header.tag, createdAt: Number(header.createdAt) || Date.now(), entries, events, goodLength: pos, problem };
}

/**
 * The parts to send for entries parsed out of `data`: a few large appends
 * (PackedForward input) go out as they are; many small ones (Message mode)
 * are moved together over the record headers, in `data` itself (no second
 * allocation), which the caller must own.
 */
export function sendParts(data: Buffer, entries: Buffer[]): Buffer[] {
  if (entries.length <= MAX_SEND_PARTS) return entries;
  let end = 0;
  for (const e of entries) {
    data.copyWithin(end, e.byteOffset - data.byteOffset, e.byteOffset - data.byteOffset + e.length);
    end += e.length;
  }
  return [data.subarray(0, end)];
}
