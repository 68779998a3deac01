/**
 * A byte-level msgpack reader that never builds JS objects for what it skips.
 *
 * Grammar (msgpack spec, "formats"): every value starts with one type byte;
 * fixed-size types carry their payload inline, str/bin/ext carry an 8/16/32-bit
 * length, array/map carry an element count (maps: pairs). The Forward Protocol
 * uses msgpack values back to back with no framing, so finding where a value
 * ends (`skipValue`) is how requests are framed, counted and passed through.
 *
 * Every function takes `(buf, pos, end)` and either returns a position or
 * `INCOMPLETE` when the value runs past `end`; bytes that are never valid
 * msgpack throw a `TRB_FWD_MALFORMED` error naming the offset.
 */
import { malformed } from './errors';

export const INCOMPLETE = -1;

/**
 * What a framer keeps of a scan between reads; the framer owns one (one per
 * connection) and passes it to `skipValue`, which writes it only when it
 * returns, so a call that passes none pays nothing for it.
 *
 * After `skipValue` returns INCOMPLETE, `need` holds a lower bound on the end
 * position the value needs, and `pos` / `remaining` where the scan stopped:
 * calling `skipValue(buf, state.pos, end, state.remaining, state)` once more
 * bytes arrived continues it. A framer scans each byte of a value split over
 * many reads once (never again from its start) and waits for `need` before
 * looking at all, so framing is linear in the bytes received.
 *
 * `containers` grows by the maps and arrays whose header the scan stepped
 * over (a header cut short is counted once whole, when the scan resumes): an
 * upper bound on how deep they nest, so a shallow value needs no second walk
 * for the depth rule. The caller sets it (to 0, or what it counted before).
 */
export interface ScanState {
  need: number;
  pos: number;
  remaining: number;
  containers: number;
}

/** A ScanState for a new scan. */
export function newScanState(): ScanState {
  return { need: 0, pos: 0, remaining: 1, containers: 0 };
}

/** `itemPos` is where the value the scan could not finish starts; `remaining` counts it. */
function incomplete(state: ScanState | undefined, need: number, itemPos: number, remaining: number, containers: number): number {
  if (state !== undefined) {
    state.need = need;
    state.pos = itemPos;
    state.remaining = remaining;
    state.containers += containers;
  }
  return INCOMPLETE;
}

/**
 * Bytes of a value decided by its first byte alone: positive and negative
 * fixint, nil, bool, fixstr (header included), int, uint, float and fixext;
 * 0 for a container or a value whose length follows. Shared with admission.ts.
 */
export const FIXED_SIZE = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) FIXED_SIZE[b] = 1;
  else if (b >= 0xa0 && b <= 0xbf) FIXED_SIZE[b] = 1 + (b & 0x1f);
}
for (const [b, n] of [
  [0xcc, 2],
  [0xd0, 2],
  [0xcd, 3],
  [0xd1, 3],
  [0xce, 5],
  [0xd2, 5],
  [0xca, 5],
  [0xcf, 9],
  [0xd3, 9],
  [0xcb, 9],
  [0xd4, 3],
  [0xd5, 4],
  [0xd6, 6],
  [0xd7, 10],
  [0xd8, 18],
]) {
  FIXED_SIZE[b] = n;
}

/**
 * Returns the position just past the value at `pos` (or, with `remaining`
 * > 1, just past that many values back to back), or INCOMPLETE. With `state`,
 * it also reports where to resume and the containers stepped over (above).
 */
export function skipValue(buf: Buffer, pos: number, end: number, remaining = 1, state?: ScanState): number {
  let containers = 0;
  while (remaining > 0) {
    if (pos >= end) return incomplete(state, pos + 1, pos, remaining, containers);
    const b = buf[pos];
    remaining--;
    // One table read steps over every scalar whose size its first byte decides (most of a record's bytes).
    const size = FIXED_SIZE[b];
    if (size !== 0) {
      pos += size;
    } else if (b <= 0x9f) {
      remaining += b <= 0x8f ? (b & 0x0f) * 2 : b & 0x0f; // fixmap (pairs), fixarray
      pos += 1;
      containers++;
    } else {
      switch (b) {
        case 0xc4:
        case 0xd9:
          if (pos + 2 > end) return incomplete(state, pos + 2, pos, remaining + 1, containers);
          pos += 2 + buf[pos + 1];
          break;
        case 0xc5:
        case 0xda:
          if (pos + 3 > end) return incomplete(state, pos + 3, pos, remaining + 1, containers);
          pos += 3 + buf.readUInt16BE(pos + 1);
          break;
        case 0xc6:
        case 0xdb:
          if (pos + 5 > end) return incomplete(state, pos + 5, pos, remaining + 1, containers);
          pos += 5 + buf.readUInt32BE(pos + 1);
          break;
        case 0xc7:
          if (pos + 2 > end) return incomplete(state, pos + 2, pos, remaining + 1, containers);
          pos += 3 + buf[pos + 1];
          break;
        case 0xc8:
          if (pos + 3 > end) return incomplete(state, pos + 3, pos, remaining + 1, containers);
          pos += 4 + buf.readUInt16BE(pos + 1);
          break;
        case 0xc9:
          if (pos + 5 > end) return incomplete(state, pos + 5, pos, remaining + 1, containers);
          pos += 6 + buf.readUInt32BE(pos + 1);
          break;
        case 0xdc:
          if (pos + 3 > end) return incomplete(state, pos + 3, pos, remaining + 1, containers);
          remaining += buf.readUInt16BE(pos + 1);
          pos += 3;
          containers++;
          break;
        case 0xdd:
          if (pos + 5 > end) return incomplete(state, pos + 5, pos, remaining + 1, containers);
          remaining += buf.readUInt32BE(pos + 1);
          pos += 5;
          containers++;
          break;
        case 0xde:
          if (pos + 3 > end) return incomplete(state, pos + 3, pos, remaining + 1, containers);
          remaining += buf.readUInt16BE(pos + 1) * 2;
          pos += 3;
          containers++;
          break;
        case 0xdf:
          if (pos + 5 > end) return incomplete(state, pos + 5, pos, remaining + 1, containers);
          remaining += buf.readUInt32BE(pos + 1) * 2;
          pos += 5;
          containers++;
          break;
        default:
          throw malformed(`never-used type byte 0x${b.toString(16)}`, pos);
      }
    }
  }
  // The last value's payload runs past `end`: resume just after it once it is all there.
  if (pos > end) return incomplete(state, pos, pos, 0, containers);
  if (state !== undefined) state.containers += containers;
  return pos;
}

/** Header of an array at `pos`: element count and where the first element starts, or null if not an array. */
export function readArrayHeader(buf: Buffer, pos: number, end: number): { count: number; next: number } | null {
  if (pos >= end) return null;
  const b = buf[pos];
  if (b >= 0x90 && b <= 0x9f) return { count: b & 0x0f, next: pos + 1 };
  if (b === 0xdc && pos + 3 <= end) return { count: buf.readUInt16BE(pos + 1), next: pos + 3 };
  if (b === 0xdd && pos + 5 <= end) return { count: buf.readUInt32BE(pos + 1), next: pos + 5 };
  return null;
}

/** Header of a map at `pos`: pair count and where the first key starts, or null if not a map. */
export function readMapHeader(buf: Buffer, pos: number, end: number): { count: number; next: number } | null {
  if (pos >= end) return null;
  const b = buf[pos];
  if (b >= 0x80 && b <= 0x8f) return { count: b & 0x0f, next: pos + 1 };
  if (b === 0xde && pos + 3 <= end) return { count: buf.readUInt16BE(pos + 1), next: pos + 3 };
  if (b === 0xdf && pos + 5 <= end) return { count: buf.readUInt32BE(pos + 1), next: pos + 5 };
  return null;
}

/**
 * Payload of a str or bin value at `pos` (both are bytes to this reader: Fluentd
 * sends binary entries and Fluent Bit binary salts as str). Returns the payload
 * bounds, or null when the value is neither str nor bin.
 */
export function readBytes(buf: Buffer, pos: number, end: number): { start: number; end: number } | null {
  if (pos >= end) return null;
  const b = buf[pos];
  let start: number;
  let len: number;
  if (b >= 0xa0 && b <= 0xbf) {
    start = pos + 1;
    len = b & 0x1f;
  } else if ((b === 0xd9 || b === 0xc4) && pos + 2 <= end) {
    start = pos + 2;
    len = buf[pos + 1];
  } else if ((b === 0xda || b === 0xc5) && pos + 3 <= end) {
    start = pos + 3;
    len = buf.readUInt16BE(pos + 1);
  } else if ((b === 0xdb || b === 0xc6) && pos + 5 <= end) {
    start = pos + 5;
    len = buf.readUInt32BE(pos + 1);
  } else {
    return null;
  }
  return start + len <= end ? { start, end: start + len } : null;
}

/** True when the value at `pos` is str (not bin). */
export function isStr(buf: Buffer, pos: number): boolean {
  const b = buf[pos];
  return (b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb;
}

/** Reads an integer (positive or negative, any width up to 53 bits) at `pos`, or null when the value is not an int. */
export function readInt(buf: Buffer, pos: number, end: number): { value: number; next: number } | null {
  if (pos >= end) return null;
  const b = buf[pos];
  if (b <= 0x7f) return { value: b, next: pos + 1 };
  if (b >= 0xe0) return { value: b - 0x100, next: pos + 1 };
  const need = (n: number) => pos + 1 + n <= end;
  switch (b) {
    case 0xcc:
      return need(1) ? { value: buf[pos + 1], next: pos + 2 } : null;
    case 0xcd:
      return need(2) ? { value: buf.readUInt16BE(pos + 1), next: pos + 3 } : null;
    case 0xce:
      return need(4) ? { value: buf.readUInt32BE(pos + 1), next: pos + 5 } : null;
    case 0xcf:
      return need(8) ? { value: Number(buf.readBigUInt64BE(pos + 1)), next: pos + 9 } : null;
    case 0xd0:
      return need(1) ? { value: buf.readInt8(pos + 1), next: pos + 2 } : null;
    case 0xd1:
      return need(2) ? { value: buf.readInt16BE(pos + 1), next: pos + 3 } : null;
    case 0xd2:
      return need(4) ? { value: buf.readInt32BE(pos + 1), next: pos + 5 } : null;
    case 0xd3:
      return need(8) ? { value: Number(buf.readBigInt64BE(pos + 1)), next: pos + 9 } : null;
    default:
      return null;
  }
}

/** A msgpack value with str and bin both kept as bytes; maps become Maps keyed by UTF-8 text. */
export type RawValue = null | boolean | number | Buffer | RawValue[] | Map<string, RawValue> | RawExt;
export interface RawExt {
  ext: number;
  data: Buffer;
}

/**
 * Decodes small control values (handshake messages, option maps) keeping every
 * str as bytes. Not for records: use the record decoder for those.
 */
export function readRaw(buf: Buffer, pos: number, end: number, depth = 0): { value: RawValue; next: number } {
  if (depth > 16) throw malformed('nesting deeper than 16 in a control value', pos);
  if (pos >= end) throw malformed('value cut short', pos);
  const bytes = readBytes(buf, pos, end);
  if (bytes) return { value: buf.subarray(bytes.start, bytes.end), next: bytes.end };
  const int = readInt(buf, pos, end);
  if (int) return int;
  const b = buf[pos];
  if (b === 0xc0) return { value: null, next: pos + 1 };
  if (b === 0xc2 || b === 0xc3) return { value: b === 0xc3, next: pos + 1 };
  if (b === 0xca && pos + 5 <= end) return { value: buf.readFloatBE(pos + 1), next: pos + 5 };
  if (b === 0xcb && pos + 9 <= end) return { value: buf.readDoubleBE(pos + 1), next: pos + 9 };
  const arr = readArrayHeader(buf, pos, end);
  if (arr) {
    const out: RawValue[] = [];
    let p = arr.next;
    for (let i = 0; i < arr.count; i++) {
      const r = readRaw(buf, p, end, depth + 1);
      out.push(r.value);
      p = r.next;
    }
    return { value: out, next: p };
  }
  const map = readMapHeader(buf, pos, end);
  if (map) {
    const out = new Map<string, RawValue>();
    let p = map.next;
    for (let i = 0; i < map.count; i++) {
      const k = readRaw(buf, p, end, depth + 1);
      const v = readRaw(buf, k.next, end, depth + 1);
      out.set(Buffer.isBuffer(k.value) ? k.value.toString('utf8') : String(k.value), v.value);
      p = v.next;
    }
    return { value: out, next: p };
  }
  const next = skipValue(buf, pos, end);
  if (next === INCOMPLETE) throw malformed('value cut short', pos);
  if (b >= 0xd4 && b <= 0xd8) return { value: { ext: buf.readInt8(pos + 1), data: buf.subarray(pos + 2, next) }, next };
  if (b >= 0xc7 && b <= 0xc9) {
    const hdr = b === 0xc7 ? 3 : b === 0xc8 ? 4 : 6;
    return { value: { ext: buf.readInt8(pos + hdr - 1), data: buf.subarray(pos + hdr, next) }, next };
  }
  throw malformed(`unexpected type byte 0x${b.toString(16)}`, pos);
}
