/**
 * The chunk file format: one append-only file per chunk, named by the
 * chunk's id (`<32 hex digits>.chunk`), so the id survives restarts.
 *
 *   file    = record(header) (record(entries) id-record?)*      (framing: see ../records.ts)
 *   header  = JSON { "v": 2, "tag": string, "createdAt": ms }
 *   entries = the forward protocol's packed entries of one append
 *   ids     = at: f64 LE (ms) | hash: 4 × u32 in the platform's byte order, one per client chunk id   (an id record: the high bit of its length word set)
 *
 * An id record follows the entries of one group commit's write and holds the
 * resend-key hashes (acked-chunk-ids.ts) of the client chunk ids those
 * entries carry. It is written in the same vectored write as the entries, so
 * a crash between that write and the acked-id journal's write leaves the ids
 * beside their events, and recovery remembers them: a resend of those chunks
 * is then acked without being stored twice. Recovery reads an id record only
 * when every record before it in its file is intact (an empty entries record,
 * never written, counts as torn), so no id is kept whose events in that file
 * were torn off. (A chunk handed over in pieces has its id on its last piece
 * and a piece id on each earlier one (pieces.ts of @tributary/inputs): each
 * piece's id is beside that piece's events.)
 *
 * Version 1 files (no id records) read the same. A build that writes version
 * 1 takes a version 2 file's first id record for a torn record and cuts the
 * file off there, events after it included: drain the buffer before going
 * back to one.
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

/** The high bit of a record's length word: the record holds client chunk ids, not entries. */
const ID_RECORD = 0x80000000;
/** Bytes of an id record's time, before its hashes. */
const ID_RECORD_TIME_BYTES = 8;

/** Client chunk ids written beside one write's entries: `n` resend-key hashes `hashes[0 … 4n)`, acked at `at` (ms). */
export interface ChunkIds {
  hashes: Uint32Array;
  n: number;
  at: number;
}

export interface EncodedAppend {
  /** The records, for one vectored write. */
  buffers: Buffer[];
  /** Bytes in `buffers`. */
  bytes: number;
  /** What the entry records carry (one per record); a joined payload is in `join`'s memory, valid until its next join. */
  payloads: Buffer[];
}

/** The id record of `ids`: its header and payload. */
function idRecord(ids: ChunkIds): Buffer[] {
  const payload = Buffer.allocUnsafe(ID_RECORD_TIME_BYTES + 16 * ids.n);
  payload.writeDoubleLE(ids.at, 0);
  // The platform's byte order, as the acked-id journal's: read back where it was written (moved across byte orders,
  // the ids are forgotten: resends stored again).
  Buffer.from(ids.hashes.buffer, ids.hashes.byteOffset, 16 * ids.n).copy(payload, ID_RECORD_TIME_BYTES);
  const [hdr] = frame([payload]);
  hdr.writeUInt32BE((payload.length | ID_RECORD) >>> 0, 0);
  return [hdr, payload];
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
  ids: ChunkIds | null = null,
): EncodedAppend {
  const buffers: Buffer[] = isNew ? frame([Buffer.from(JSON.stringify({ v: 2, tag: chunk.tag, createdAt: chunk.createdAt }))]) : [];
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
  if (ids !== null && ids.n > 0) buffers.push(...idRecord(ids));
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

  /** True when `b` is a view of the scratch, which the next join overwrites. */
  holds(b: Buffer): boolean {
    return b.buffer === this.buf.buffer;
  }
}

export interface ParsedChunkFile {
  tag: string;
  createdAt: number;
  /** The entry records' payloads, views into the data parsed. */
  entries: Buffer[];
  /** Events in `entries`; counted only when verifying (0 otherwise). */
  events: number;
  /** The id records' client chunk ids, in file order (each record's hashes copied out); read only when verifying. */
  ids: ChunkIds[];
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
  let header: { tag: string; createdAt: number; v?: number } | null = null;
  const entries: Buffer[] = [];
  const ids: ChunkIds[] = [];
  let events = 0;
  let problem: string | undefined;
  while (pos < data.length) {
    if (pos + RECORD_HEADER > data.length) {
      problem = `torn record header at byte ${pos}`;
      break;
    }
    const word = data.readUInt32BE(pos);
    // Only a version 2 file has id records: in a version 1 file the bit is a torn or corrupt length, as it always was.
    const isIds = header !== null && (header.v ?? 1) >= 2 && word >= ID_RECORD;
    const len = isIds ? word - ID_RECORD : word;
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
    } else if (isIds) {
      if (!verify) {
        pos = start + len;
        continue;
      }
      if (len < ID_RECORD_TIME_BYTES + 16 || (len - ID_RECORD_TIME_BYTES) % 16 !== 0) {
        problem = `the id record at byte ${pos} holds ${len} bytes, not a time and whole hashes`;
        break;
      }
      const n = (len - ID_RECORD_TIME_BYTES) / 16;
      const hashes = new Uint32Array(4 * n);
      payload.copy(Buffer.from(hashes.buffer), 0, ID_RECORD_TIME_BYTES);
      ids.push({ hashes, n, at: payload.readDoubleLE(0) });
    } else {
      if (verify && len === 0) {
        // Never written (every append has entries): eight zero bytes where a record was, as a lost page reads back.
        problem = `empty entries record at byte ${pos}`;
        break;
      }
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
  return { tag: header.tag, createdAt: Number(header.createdAt) || Date.now(), entries, ids, events, goodLength: pos, problem };
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
