/**
 * The embedded log's record format (pure: bytes in, values out).
 *
 *   segment  = record*
 *   record   = u32 BE length | u32 BE checksum | body        ; length = body bytes
 *   body     = head | entries
 *   head     = u16 BE tag length | tag | u16 BE key length | key | u32 BE count
 *   checksum = crc32(head, crc32(entries))   ; entries first, so ingest's crc of the entries is reused
 */
import { crc32 } from 'node:zlib';
import type { LogRecord } from '../durable-log';

/** Length and checksum in front of every body. */
export const HEADER = 8;
/** The head stores the tag and key lengths in 16 bits and the count in 32. */
const MAX_HEAD_FIELD_BYTES = 0xffff;

/** Why `r` cannot be encoded as a record, or null when it can. */
export function unencodable(r: LogRecord): string | null {
  const tagBytes = Buffer.byteLength(r.tag, 'utf8');
  if (tagBytes > MAX_HEAD_FIELD_BYTES) return `its tag is ${tagBytes} bytes (at most ${MAX_HEAD_FIELD_BYTES})`;
  const keyBytes = Buffer.byteLength(r.key, 'utf8');
  if (keyBytes > MAX_HEAD_FIELD_BYTES) return `its key is ${keyBytes} bytes (at most ${MAX_HEAD_FIELD_BYTES})`;
  if (!(r.count >= 0 && r.count <= 0xffffffff)) return `its count ${r.count} is not a 32-bit count`;
  return null;
}

/**
 * Appends record `r` to `out` as two buffers: header and head in one fresh
 * buffer, then `r.entries` itself (not copied; the caller keeps it unchanged
 * until written). Returns the record's size in bytes. `r` must be encodable
 * (`unencodable(r) === null`).
 */
export function encodeRecord(r: LogRecord, out: Buffer[]): number {
  const tagLen = Buffer.byteLength(r.tag, 'utf8');
  const keyLen = Buffer.byteLength(r.key, 'utf8');
  const headLen = 2 + tagLen + 2 + keyLen + 4;
  const front = Buffer.allocUnsafe(HEADER + headLen);
  let p = front.writeUInt16BE(tagLen, HEADER);
  p += front.write(r.tag, p, 'utf8');
  p = front.writeUInt16BE(keyLen, p);
  p += front.write(r.key, p, 'utf8');
  front.writeUInt32BE(r.count, p);
  front.writeUInt32BE(headLen + r.entries.length, 0);
  front.writeUInt32BE(checksum(front.subarray(HEADER), r.entries, r.entriesCrc), 4);
  out.push(front, r.entries);
  return HEADER + headLen + r.entries.length;
}

function headLength(body: Buffer): number {
  const tagLen = body.readUInt16BE(0);
  const keyLen = body.readUInt16BE(2 + tagLen);
  return 2 + tagLen + 2 + keyLen + 4;
}

function checksum(head: Buffer, entries: Buffer, entriesCrc?: number): number {
  return crc32(head, entriesCrc ?? crc32(entries)) >>> 0;
}

/** Only the dedupe key of a body, without touching the entries. */
export function bodyKey(body: Buffer): string {
  const tagLen = body.readUInt16BE(0);
  const keyLen = body.readUInt16BE(2 + tagLen);
  return body.toString('utf8', 4 + tagLen, 4 + tagLen + keyLen);
}

/** The record a body holds; its `entries` is a view into `body`. */
export function decodeBody(body: Buffer): LogRecord {
  let p = 0;
  const tagLen = body.readUInt16BE(p);
  const tag = body.toString('utf8', p + 2, p + 2 + tagLen);
  p += 2 + tagLen;
  const keyLen = body.readUInt16BE(p);
  const key = body.toString('utf8', p + 2, p + 2 + keyLen);
  p += 2 + keyLen;
  const count = body.readUInt32BE(p);
  return { tag, key, count, entries: body.subarray(p + 4) };
}

/**
 * Scans the records in `data`: their bodies (views into `data`), where each
 * starts, and where the valid prefix ends. A record cut short ends the scan;
 * with `verify`, so does one whose head is malformed or whose checksum fails
 * (recovery verifies the last segment, where a crash can tear the tail).
 */
export function scan(data: Buffer, verify: boolean): { bodies: Buffer[]; positions: number[]; end: number } {
  const bodies: Buffer[] = [];
  const positions: number[] = [];
  let pos = 0;
  while (pos + HEADER <= data.length) {
    const len = data.readUInt32BE(pos);
    if (pos + HEADER + len > data.length) break;
    const body = data.subarray(pos + HEADER, pos + HEADER + len);
    if (verify && !intact(body, data.readUInt32BE(pos + 4))) break;
    bodies.push(body);
    positions.push(pos);
    pos += HEADER + len;
  }
  return { bodies, positions, end: pos };
}

function intact(body: Buffer, sum: number): boolean {
  if (body.length < 4) return false;
  const tagLen = body.readUInt16BE(0);
  if (4 + tagLen > body.length) return false;
  const h = headLength(body);
  return h <= body.length && checksum(body.subarray(0, h), body.subarray(h)) === sum;
}
