/**
 * msgpack entries → NDJSON, at the byte level: no JS object per event, no
 * string per value on the common path. Every value msgpack can hold has a
 * JSON form, so no accepted event can stop egress:
 *
 *   nil, bool            null, true, false
 *   int (any width)      the exact decimal (64-bit values beyond 2^53 too)
 *   float                the shortest round-trip decimal; NaN and ±Inf → null
 *   str                  a JSON string; invalid UTF-8 sequences become U+FFFD
 *   bin                  a base64 string
 *   array, map           an array, an object; non-string map keys are
 *                        stringified (1 → "1", nil → "null", [1] → "[1]")
 *   ext -1 (timestamp)   an RFC 3339 string
 *   other ext            {"$ext": type, "data": "<base64>"}
 *
 * An entry is read by the protocol's own reader (`readEntryHead`): any
 * header width, int, float or EventTime (fixext8 or ext8) time, and Fluent
 * Bit's `[[time, metadata], record]`. A line is the record's own keys in
 * order, then `_id` (the chunk's log key and the event's index), `_time`
 * (RFC 3339, nine fraction digits), `_tag` and, when the entry carries
 * metadata with at least one key, `_metadata` holding it as a JSON value
 * (names from `fields`; an empty metadata name leaves metadata out). A
 * record that already holds one of those keys keeps its own value and the
 * added field is left out: the sender's data wins.
 * An event time outside 1970-01-01..9999-12-31 (or NaN, ±Inf, nanoseconds
 * over a second) is written raw as a string in `_time`, and the event is
 * filed under hour -1 (`dt=1970-01-01/hour=00`).
 *
 * What still cannot be written (nesting deeper than MAX_DEPTH, bytes that
 * are not msgpack) throws `Unencodable` for that one event; the caller
 * dead-letters it and goes on.
 */
import { isUtf8 } from 'node:buffer';
import type { DeadLetterKind } from '@tributary/core';
// Deep imports, not the package index: encoder threads load this file (see encode-job.ts).
import {
  EntryFault,
  type EntryHead,
  TimeForm,
  entryFaultText,
  newEntryHead,
  readEntryHead,
} from '@tributary/forward-protocol/dist/entries';
import { EventTime } from '@tributary/forward-protocol/dist/event-time';
import { readMapHeader } from '@tributary/forward-protocol/dist/msgpack-scan';

/**
 * What the per-event path uses from the protocol package, bound once: read
 * through the package's re-exports (a getter call each under CommonJS), they
 * cost the transcoder 7% of its events per CPU-second (measured, docs/benchmarks.md).
 */
const readHead = readEntryHead;
const FAULT_NONE = EntryFault.None;
const TIME_EVENT = TimeForm.EventTime;
const TIME_FLOAT = TimeForm.Float;

/** Deeper than this, an event is dead-lettered (the JSON would be unreadable for Athena anyway). */
const MAX_DEPTH = 512;
/** Last second of 9999-12-31: the end of the RFC 3339 range. */
const MAX_SECONDS = 253402300799;

export interface FieldNames {
  id: string;
  time: string;
  tag: string;
  /** Where a Fluent Bit entry's metadata goes; '' drops it. */
  metadata: string;
}

export const DEFAULT_FIELDS: FieldNames = { id: '_id', time: '_time', tag: '_tag', metadata: '_metadata' };

export class Unencodable extends Error {
  constructor(
    message: string,
    readonly kind: DeadLetterKind = 'malformed',
  ) {
    super(message);
  }
}

/** Node's undocumented but long-stable latin1 fast paths (no encoding-name lookup per call). */
type Latin1Buffer = Buffer & { latin1Write(s: string, offset: number): number; latin1Slice(start: number, end: number): string };

/** A growable output buffer; `pos` is the number of bytes written. */
export class Out {
  buf: Buffer;
  pos = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  bytes(b: Buffer): void {
    const n = b.length;
    this.ensure(n);
    if (n > 64) {
      this.pos += b.copy(this.buf, this.pos);
      return;
    }
    const o = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) o[p++] = b[i];
    this.pos = p;
  }

  ascii(s: string): void {
    this.ensure(s.length);
    this.pos += (this.buf as Latin1Buffer).latin1Write(s, this.pos);
  }

  byte(c: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Hands over what was written and starts an empty buffer of `next` bytes. */
  take(next: number): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(next);
    this.pos = 0;
    return out;
  }
}

const HEX = Buffer.from('0123456789abcdef');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Escape byte for each byte < 0x80 that needs one (0 = copy as is; 0x75 = \u00XX). */
const ESCAPE = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) ESCAPE[c] = 0x75;
ESCAPE[0x08] = 0x62; // \b
ESCAPE[0x09] = 0x74; // \t
ESCAPE[0x0a] = 0x6e; // \n
ESCAPE[0x0c] = 0x66; // \f
ESCAPE[0x0d] = 0x72; // \r
ESCAPE[QUOTE] = QUOTE;
ESCAPE[BACKSLASH] = BACKSLASH;

/**
 * Writes `src[start, end)` (UTF-8 text) as a JSON string, escaped as
 * JSON.stringify escapes. One pass that copies as it scans: log values are
 * short, and a native copy per run cost more than the bytes.
 */
function writeJsonString(out: Out, src: Buffer, start: number, end: number): void {
  out.ensure((end - start) * 6 + 2);
  const o = out.buf;
  const open = out.pos;
  let p = open;
  o[p++] = QUOTE;
  let wide = false;
  for (let i = start; i < end; i++) {
    const c = src[i];
    if (c >= 0x80) {
      wide = true;
      o[p++] = c;
      continue;
    }
    const e = ESCAPE[c];
    if (e === 0) {
      o[p++] = c;
      continue;
    }
    o[p++] = BACKSLASH;
    o[p++] = e;
    if (e === 0x75) {
      o[p++] = 0x30;
      o[p++] = 0x30;
      o[p++] = HEX[c >> 4];
      o[p++] = HEX[c & 15];
    }
  }
  if (wide && !isUtf8(src.subarray(start, end))) {
    // Rare: let the platform replace invalid sequences with U+FFFD and escape the result.
    const text = JSON.stringify(src.toString('utf8', start, end));
    out.pos = open;
    out.ensure(Buffer.byteLength(text));
    out.pos += out.buf.write(text, out.pos);
    return;
  }
  o[p++] = QUOTE;
  out.pos = p;
}

function writeUint(out: Out, n: number): void {
  if (n < 10) {
    out.byte(0x30 + n);
    return;
  }
  if (n > 0x7fffffff) {
    out.ascii(String(n));
    return;
  }
  let digits = 1;
  for (let m = n; m >= 10; m = (m / 10) | 0) digits++;
  out.ensure(digits);
  const o = out.buf;
  let p = out.pos + digits;
  out.pos = p;
  do {
    o[--p] = 0x30 + (n % 10);
    n = (n / 10) | 0;
  } while (n > 0);
}

function writeInt64(out: Out, src: Buffer, pos: number, signed: boolean): void {
  const hi = signed ? src.readInt32BE(pos) : src.readUInt32BE(pos);
  const lo = src.readUInt32BE(pos + 4);
  const n = hi * 4294967296 + lo;
  if (Number.isSafeInteger(n)) {
    if (n < 0) out.byte(0x2d);
    writeUint(out, Math.abs(n));
  } else out.ascii((signed ? src.readBigInt64BE(pos) : src.readBigUInt64BE(pos)).toString());
}

function writeFloat(out: Out, f: number): void {
  if (Number.isFinite(f)) out.ascii(String(f));
  else out.ascii('null');
}

function unencodable(what: string, pos: number, kind: DeadLetterKind = 'malformed'): Unencodable {
  return new Unencodable(`${what} at byte ${pos} of the event`, kind);
}

/**
 * Writes the msgpack value at `pos` as JSON; returns the position after it.
 * `end` bounds the value (the entry's end).
 */
function writeValue(out: Out, src: Buffer, pos: number, end: number, depth: number): number {
  if (pos >= end) throw unencodable('a value is cut short', pos);
  const b = src[pos];
  if (b <= 0x7f) {
    writeUint(out, b);
    return pos + 1;
  }
  if (b >= 0xe0) {
    out.ascii(String(b - 0x100));
    return pos + 1;
  }
  if (b <= 0x8f) return writeMap(out, src, pos + 1, end, b & 0x0f, depth);
  if (b <= 0x9f) return writeArray(out, src, pos + 1, end, b & 0x0f, depth);
  if (b <= 0xbf) return writeStr(out, src, pos + 1, b & 0x1f, end);
  switch (b) {
    case 0xc0:
      out.ascii('null');
      return pos + 1;
    case 0xc2:
      out.ascii('false');
      return pos + 1;
    case 0xc3:
      out.ascii('true');
      return pos + 1;
    case 0xc4:
      return writeBin(out, src, pos + 2, need(src, pos, 2, end) && src[pos + 1], end);
    case 0xc5:
      return writeBin(out, src, pos + 3, need(src, pos, 3, end) && src.readUInt16BE(pos + 1), end);
    case 0xc6:
      return writeBin(out, src, pos + 5, need(src, pos, 5, end) && src.readUInt32BE(pos + 1), end);
    case 0xc7:
      return writeExt(out, src, pos + 3, need(src, pos, 3, end) && src[pos + 1], src.readInt8(pos + 2), end);
    case 0xc8:
      return writeExt(out, src, pos + 4, need(src, pos, 4, end) && src.readUInt16BE(pos + 1), src.readInt8(pos + 3), end);
    case 0xc9:
      return writeExt(out, src, pos + 6, need(src, pos, 6, end) && src.readUInt32BE(pos + 1), src.readInt8(pos + 5), end);
    case 0xca:
      need(src, pos, 5, end);
      writeFloat(out, src.readFloatBE(pos + 1));
      return pos + 5;
    case 0xcb:
      need(src, pos, 9, end);
      writeFloat(out, src.readDoubleBE(pos + 1));
      return pos + 9;
    case 0xcc:
      need(src, pos, 2, end);
      writeUint(out, src[pos + 1]);
      return pos + 2;
    case 0xcd:
      need(src, pos, 3, end);
      writeUint(out, src.readUInt16BE(pos + 1));
      return pos + 3;
    case 0xce:
      need(src, pos, 5, end);
      writeUint(out, src.readUInt32BE(pos + 1));
      return pos + 5;
    case 0xcf:
      need(src, pos, 9, end);
      writeInt64(out, src, pos + 1, false);
      return pos + 9;
    case 0xd0:
      need(src, pos, 2, end);
      out.ascii(String(src.readInt8(pos + 1)));
      return pos + 2;
    case 0xd1:
      need(src, pos, 3, end);
      out.ascii(String(src.readInt16BE(pos + 1)));
      return pos + 3;
    case 0xd2:
      need(src, pos, 5, end);
      out.ascii(String(src.readInt32BE(pos + 1)));
      return pos + 5;
    case 0xd3:
      need(src, pos, 9, end);
      writeInt64(out, src, pos + 1, true);
      return pos + 9;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      need(src, pos, 2, end);
      return writeExt(out, src, pos + 2, 1 << (b - 0xd4), src.readInt8(pos + 1), end);
    case 0xd9:
      return writeStr(out, src, pos + 2, need(src, pos, 2, end) && src[pos + 1], end);
    case 0xda:
      return writeStr(out, src, pos + 3, need(src, pos, 3, end) && src.readUInt16BE(pos + 1), end);
    case 0xdb:
      return writeStr(out, src, pos + 5, need(src, pos, 5, end) && src.readUInt32BE(pos + 1), end);
    case 0xdc:
      return writeArray(out, src, pos + 3, end, need(src, pos, 3, end) && src.readUInt16BE(pos + 1), depth);
    case 0xdd:
      return writeArray(out, src, pos + 5, end, need(src, pos, 5, end) && src.readUInt32BE(pos + 1), depth);
    case 0xde:
      return writeMap(out, src, pos + 3, end, need(src, pos, 3, end) && src.readUInt16BE(pos + 1), depth);
    case 0xdf:
      return writeMap(out, src, pos + 5, end, need(src, pos, 5, end) && src.readUInt32BE(pos + 1), depth);
    default:
      throw unencodable(`byte 0x${b.toString(16)} is not msgpack`, pos);
  }
}

/** Checks that `n` header bytes are there; returns 1 so it can lead an `&&`. */
function need(src: Buffer, pos: number, n: number, end: number): 1 {
  if (pos + n > end) throw unencodable('a value header is cut short', pos);
  return 1;
}

function writeStr(out: Out, src: Buffer, start: number, len: number, end: number): number {
  if (start + len > end) throw unencodable('a string is cut short', start);
  writeJsonString(out, src, start, start + len);
  return start + len;
}

function writeBin(out: Out, src: Buffer, start: number, len: number, end: number): number {
  if (start + len > end) throw unencodable('a binary value is cut short', start);
  out.byte(QUOTE);
  const text = src.toString('base64', start, start + len);
  out.ascii(text);
  out.byte(QUOTE);
  return start + len;
}

function writeExt(out: Out, src: Buffer, start: number, len: number, type: number, end: number): number {
  if (start + len > end) throw unencodable('an ext value is cut short', start);
  if (type === -1 && (len === 4 || len === 8 || len === 12)) {
    const t = readTimestampExt(src, start, len);
    if (t) {
      out.byte(QUOTE);
      writeRfc3339(out, t.seconds, t.nanoseconds);
      out.byte(QUOTE);
      return start + len;
    }
  }
  out.ascii(`{"$ext":${type},"data":"`);
  out.ascii(src.toString('base64', start, start + len));
  out.ascii('"}');
  return start + len;
}

/** msgpack's timestamp extension (type -1); null when outside the RFC 3339 range. */
function readTimestampExt(src: Buffer, p: number, len: number): { seconds: number; nanoseconds: number } | null {
  let seconds: number;
  let nanoseconds = 0;
  if (len === 4) seconds = src.readUInt32BE(p);
  else if (len === 8) {
    const hi = src.readUInt32BE(p);
    nanoseconds = hi >>> 2;
    seconds = (hi & 3) * 4294967296 + src.readUInt32BE(p + 4);
  } else {
    nanoseconds = src.readUInt32BE(p);
    seconds = Number(src.readBigInt64BE(p + 4));
  }
  return seconds >= 0 && seconds <= MAX_SECONDS && nanoseconds < 1e9 ? { seconds, nanoseconds } : null;
}

function writeArray(out: Out, src: Buffer, pos: number, end: number, count: number, depth: number): number {
  if (depth >= MAX_DEPTH) throw unencodable(`nesting deeper than ${MAX_DEPTH}`, pos, 'depth');
  out.byte(0x5b);
  for (let i = 0; i < count; i++) {
    if (i) out.byte(0x2c);
    pos = writeValue(out, src, pos, end, depth + 1);
  }
  out.byte(0x5d);
  return pos;
}

function writeMap(out: Out, src: Buffer, pos: number, end: number, count: number, depth: number): number {
  if (depth >= MAX_DEPTH) throw unencodable(`nesting deeper than ${MAX_DEPTH}`, pos, 'depth');
  out.byte(0x7b);
  for (let i = 0; i < count; i++) {
    if (i) out.byte(0x2c);
    pos = writeKey(out, src, pos, end, depth);
    out.byte(0x3a);
    pos = writeValue(out, src, pos, end, depth + 1);
  }
  out.byte(0x7d);
  return pos;
}

/** A map key: a str as is, anything else as the JSON text of the value, as a string. */
function writeKey(out: Out, src: Buffer, pos: number, end: number, depth: number): number {
  const b = src[pos];
  if ((b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb) return writeValue(out, src, pos, end, depth + 1);
  const mark = out.pos;
  const next = writeValue(out, src, pos, end, depth + 1);
  const text = Buffer.from(out.buf.subarray(mark, out.pos));
  out.pos = mark;
  writeJsonString(out, text, 0, text.length);
  return next;
}

function sameBytes(src: Buffer, start: number, len: number, name: Buffer): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (src[start + i] !== name[i]) return false;
  return true;
}

// --- time ------------------------------------------------------------------

// A memo of a pure function (the date part of a day), not state: events of one day share it.
let cachedDay = -1;
const cachedDate = Buffer.alloc(11); // "YYYY-MM-DDT"

function two(o: Buffer, p: number, n: number): void {
  o[p] = 0x30 + ((n / 10) | 0);
  o[p + 1] = 0x30 + (n % 10);
}

/** `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; seconds must be in range. The date part is cached per day. */
function writeRfc3339(out: Out, seconds: number, nanoseconds: number): void {
  const day = Math.floor(seconds / 86400);
  if (day !== cachedDay) {
    (cachedDate as Latin1Buffer).latin1Write(new Date(day * 86400_000).toISOString().slice(0, 11), 0);
    cachedDay = day;
  }
  out.ensure(30);
  const o = out.buf;
  let p = out.pos;
  for (let i = 0; i < 11; i++) o[p++] = cachedDate[i];
  const inDay = seconds - day * 86400;
  two(o, p, (inDay / 3600) | 0);
  o[p + 2] = 0x3a;
  two(o, p + 3, ((inDay % 3600) / 60) | 0);
  o[p + 5] = 0x3a;
  two(o, p + 6, inDay % 60);
  o[p + 8] = 0x2e;
  p += 9;
  let n = nanoseconds | 0;
  for (let i = 8; i >= 0; i--) {
    o[p + i] = 0x30 + (n % 10);
    n = (n / 10) | 0;
  }
  p += 9;
  o[p++] = 0x5a;
  out.pos = p;
}

/** An entry's time: in range (seconds, nanoseconds) or, out of range, the raw text to keep. */
interface EventTimeValue {
  seconds: number;
  nanoseconds: number;
  raw: string | null;
}

// --- entries -----------------------------------------------------------------

/** Per record constants: the JSON bytes added to each of its lines. */
export interface RecordFields {
  /** `"<id field>":"<key>#` (the index and closing quote follow). */
  idHead: Buffer;
  /** `"<time field>":"` */
  timeHead: Buffer;
  /** `"<tag field>":"<tag>"` */
  tagField: Buffer;
  /** `"<metadata field>":`, or null when metadata is dropped. */
  metaHead: Buffer | null;
}

export function recordFields(fields: FieldNames, idPrefix: string, tag: string): RecordFields {
  const idHead = Buffer.from(`${JSON.stringify(fields.id)}:${JSON.stringify(`${idPrefix}#`).slice(0, -1)}`);
  return {
    idHead,
    timeHead: Buffer.from(`${JSON.stringify(fields.time)}:"`),
    tagField: Buffer.from(`${JSON.stringify(fields.tag)}:${JSON.stringify(tag)}`),
    metaHead: fields.metadata ? Buffer.from(`${JSON.stringify(fields.metadata)}:`) : null,
  };
}

/** The added fields' names as bytes, to spot a record that has its own; `first` is a byte they all start with, or -1. */
export interface FieldNameBytes {
  id: Buffer;
  time: Buffer;
  tag: Buffer;
  /** Empty when metadata is dropped (no key of a record is empty and added). */
  metadata: Buffer;
  first: number;
}

export function fieldNameBytes(fields: FieldNames): FieldNameBytes {
  const id = Buffer.from(fields.id);
  const time = Buffer.from(fields.time);
  const tag = Buffer.from(fields.tag);
  const metadata = Buffer.from(fields.metadata);
  const first = id[0] === time[0] && id[0] === tag[0] && (metadata.length === 0 || id[0] === metadata[0]) ? id[0] : -1;
  return { id, time, tag, metadata, first };
}

/**
 * Writes entries as NDJSON lines. One per job: it holds the state of the
 * entry being written (its head and time, a scratch buffer), so nothing is
 * shared between jobs or threads.
 */
export class LineWriter {
  /** Hours since the epoch of the last line written; -1 when its time was kept raw. */
  hour = 0;
  private readonly head: EntryHead = newEntryHead();
  private readonly time: EventTimeValue = { seconds: 0, nanoseconds: 0, raw: null };
  private readonly scratch = new Out(256);

  constructor(private readonly names: FieldNameBytes) {}

  /**
   * Writes the entry at `pos` (`[time, record]` or `[[time, metadata],
   * record]`, any header width) as one line (with its newline); returns the
   * position after the entry and sets `hour`. On `Unencodable` nothing is
   * left in `out`.
   */
  write(out: Out, src: Buffer, pos: number, end: number, index: number, rf: RecordFields): number {
    const mark = out.pos;
    try {
      return this.writeEntry(out, src, pos, end, index, rf);
    } catch (err) {
      out.pos = mark;
      if (err instanceof Unencodable) throw err;
      // RangeError (a length past the buffer), a never-used type byte and the like: the bytes are not msgpack
      throw new Unencodable(`the event could not be read (${(err as Error).message})`, 'malformed');
    }
  }

  private writeEntry(out: Out, src: Buffer, pos: number, end: number, index: number, rf: RecordFields): number {
    const { names, head, time } = this;
    const fault = readHead(src, pos, end, head);
    if (fault !== FAULT_NONE) {
      throw unencodable(`the event ${entryFaultText(fault)}`, pos, fault === EntryFault.CutShort ? 'malformed' : 'shape');
    }
    this.readTime(src, end);
    let p = head.recordStart;
    const b = src[p];
    let count: number;
    if (b >= 0x80 && b <= 0x8f) {
      count = b & 0x0f;
      p += 1;
    } else if (b === 0xde) {
      count = src.readUInt16BE(p + 1);
      p += 3;
    } else {
      count = src.readUInt32BE(p + 1); // 0xdf: readEntryHead checked the record is a map, its header whole
      p += 5;
    }
    let ownId = false;
    let ownTime = false;
    let ownTag = false;
    let ownMeta = false;
    out.byte(0x7b);
    for (let i = 0; i < count; i++) {
      if (i) out.byte(0x2c);
      const k = src[p];
      let keyStart = -1;
      let len = 0;
      if (k >= 0xa1 && k <= 0xbf) {
        keyStart = p + 1;
        len = k & 0x1f;
      } else if (k === 0xd9) {
        keyStart = p + 2;
        len = src[p + 1];
      }
      if (keyStart >= 0 && (names.first < 0 || src[keyStart] === names.first)) {
        // a short str key starting like the added fields: is it one of them?
        if (sameBytes(src, keyStart, len, names.id)) ownId = true;
        else if (sameBytes(src, keyStart, len, names.time)) ownTime = true;
        else if (sameBytes(src, keyStart, len, names.tag)) ownTag = true;
        else if (sameBytes(src, keyStart, len, names.metadata)) ownMeta = true;
      }
      p = writeKey(out, src, p, end, 0);
      out.byte(0x3a);
      p = writeValue(out, src, p, end, 1);
    }
    let sep = count > 0;
    if (!ownId) {
      if (sep) out.byte(0x2c);
      out.bytes(rf.idHead);
      writeUint(out, index);
      out.byte(QUOTE);
      sep = true;
    }
    if (!ownTime) {
      if (sep) out.byte(0x2c);
      out.bytes(rf.timeHead);
      if (time.raw === null) writeRfc3339(out, time.seconds, time.nanoseconds);
      else out.ascii(time.raw); // digits, '.', 'e', '+', '-', NaN, Infinity: nothing to escape
      out.byte(QUOTE);
      sep = true;
    }
    if (!ownTag) {
      if (sep) out.byte(0x2c);
      out.bytes(rf.tagField);
    }
    // Metadata (any value, though senders write a map) unless dropped, the record has the key, or it is an empty map.
    if (rf.metaHead !== null && head.metaStart >= 0 && !ownMeta && readMapHeader(src, head.metaStart, head.metaEnd)?.count !== 0) {
      out.byte(0x2c);
      out.bytes(rf.metaHead);
      writeValue(out, src, head.metaStart, head.metaEnd, 1);
    }
    out.byte(0x7d);
    out.byte(0x0a);
    this.hour = time.raw === null ? Math.floor(time.seconds / 3600) : -1;
    return p;
  }

  private setTime(seconds: number, nanoseconds: number, raw: () => string): void {
    const { time } = this;
    if (seconds >= 0 && seconds <= MAX_SECONDS && nanoseconds >= 0 && nanoseconds < 1e9) {
      time.seconds = seconds;
      time.nanoseconds = nanoseconds;
      time.raw = null;
    } else {
      time.seconds = 0;
      time.nanoseconds = 0;
      time.raw = raw();
    }
  }

  /** The entry's time, from the head `readEntryHead` filled: in range, or its raw text. */
  private readTime(src: Buffer, end: number): void {
    const { head } = this;
    const s = head.seconds;
    if (head.timeForm === TIME_EVENT) {
      const ns = head.nanoseconds;
      this.setTime(s, ns, () => `${s}.${String(ns).padStart(9, '0')}`);
    } else if (head.timeForm === TIME_FLOAT) {
      const t = EventTime.fromSeconds(s);
      this.setTime(t.seconds, t.nanoseconds, () => String(s));
    } else {
      // an integer of any width: out of range, its exact decimal (64-bit values beyond 2^53 too)
      this.setTime(s, 0, () => {
        const { scratch } = this;
        scratch.pos = 0;
        writeValue(scratch, src, head.timeStart, end, 0);
        return (scratch.buf as Latin1Buffer).latin1Slice(0, scratch.pos);
      });
    }
  }
}

/** The hour's partition path, `dt=YYYY-MM-DD/hour=HH`. */
export function hourPartition(hour: number): string {
  if (hour < 0) return 'dt=1970-01-01/hour=00';
  const d = new Date(hour * 3600_000).toISOString();
  return `dt=${d.slice(0, 10)}/hour=${d.slice(11, 13)}`;
}
