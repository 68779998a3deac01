/**
 * PackedForward entries: the grammar every mode is normalised to.
 *
 *   entries  = *entry                       ; msgpack values back to back
 *   entry    = array(2) [ time, record ]           ; array of any header width
 *   time     = int | float | EventTime | array(2) [ int | float | EventTime, metadata-map ]
 *   EventTime = fixext8 or ext8 (len 8), type 0: uint32 seconds, uint32 nanoseconds
 *   record   = map
 *
 * Scanning validates the shape and counts events without building JS objects
 * for the records; decoding is separate and only done where records are needed
 * (egress encoders, tests).
 */
import { Unpackr } from 'msgpackr';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { EVENT_TIME_EXT, EventTime } from './event-time';
import { INCOMPLETE, readArrayHeader, readInt, readMapHeader, skipValue } from './msgpack-scan';

function entryError(index: number, offset: number, what: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Shape, `Entry ${index} (byte offset ${offset} of the entries) ${what}.`);
}

/** How an entry's time was written (`EntryHead.timeForm`). */
export const TimeForm = { EventTime: 0, Int: 1, Float: 2 } as const;
export type TimeForm = (typeof TimeForm)[keyof typeof TimeForm];

/**
 * Why `readEntryHead` refused an entry (0: it did not). The same faults,
 * in the same order of checks, everywhere an entry is read: admission,
 * counting, decoding, the egress transcoder.
 */
export const EntryFault = { None: 0, NotPair: 1, BadTime: 2, MetadataNotMap: 3, RecordNotMap: 4, CutShort: 5 } as const;
export type EntryFault = (typeof EntryFault)[keyof typeof EntryFault];

/**
 * Where an entry's parts are and what its time says, as `readEntryHead`
 * found them. The caller owns one and reuses it: reading an entry allocates
 * nothing.
 */
export interface EntryHead {
  timeForm: TimeForm;
  /** The time value's first byte (inside `[time, metadata]` when the entry has metadata). */
  timeStart: number;
  /** EventTime: its seconds; int: the value (exact below 2^53); float: the value. */
  seconds: number;
  /** EventTime: its nanoseconds; else 0. */
  nanoseconds: number;
  /** The metadata value of a `[[time, metadata], record]` entry is `[metaStart, metaEnd)`; both -1 without one. */
  metaStart: number;
  metaEnd: number;
  /** The record's first byte (a map header, checked whole). */
  recordStart: number;
}

export function newEntryHead(): EntryHead {
  return { timeForm: TimeForm.EventTime, timeStart: 0, seconds: 0, nanoseconds: 0, metaStart: -1, metaEnd: -1, recordStart: 0 };
}

/**
 * Reads a time at `pos` (EventTime as fixext8 `d7 00` or ext8 `c7 08 00`,
 * an int of any width, float32 or float64) into `head`; returns the
 * position after it, or -1 when there is none whole before `end`.
 * Ranges (seconds, nanoseconds) are the caller's rule.
 */
export function readTime(buf: Buffer, pos: number, end: number, head: EntryHead): number {
  const b = buf[pos];
  head.timeStart = pos;
  head.nanoseconds = 0;
  if (b === 0xd7 || b === 0xc7) {
    const p = b === 0xd7 ? pos + 2 : pos + 3;
    if (b === 0xd7 ? buf[pos + 1] !== EVENT_TIME_EXT : buf[pos + 1] !== 8 || buf[pos + 2] !== EVENT_TIME_EXT) return -1;
    if (p + 8 > end) return -1;
    head.timeForm = TimeForm.EventTime;
    head.seconds = buf.readUInt32BE(p);
    head.nanoseconds = buf.readUInt32BE(p + 4);
    return p + 8;
  }
  if (b === 0xca || b === 0xcb) {
    const next = pos + (b === 0xca ? 5 : 9);
    if (next > end) return -1;
    head.timeForm = TimeForm.Float;
    head.seconds = b === 0xca ? buf.readFloatBE(pos + 1) : buf.readDoubleBE(pos + 1);
    return next;
  }
  const int = readInt(buf, pos, end);
  if (!int) return -1;
  head.timeForm = TimeForm.Int;
  head.seconds = int.value;
  return int.next;
}

/**
 * Reads the head of the entry at `pos`: an array of 2 (any header width)
 * holding a time (see `readTime`) or `[time, metadata]` (Fluent Bit's
 * metadata form, an array of 2 of any width), then a map (any header width).
 * Fills `head` and returns `EntryFault.None`, or the first fault found. The
 * record itself is not walked (the caller skips, checks or writes it from
 * `head.recordStart`); metadata is skipped whatever it holds (the rule that
 * it is a map is `metadataIsMap`, for those that refuse: a sink writes any
 * value it finds there rather than lose the event). Throws only
 * what `skipValue` throws on bytes that are never msgpack.
 *
 * Fast path first: `0x92` then a fixext8 EventTime is what nearly every
 * sender writes.
 */
export function readEntryHead(buf: Buffer, pos: number, end: number, head: EntryHead): EntryFault {
  const b = buf[pos];
  if (b === 0x92 && buf[pos + 1] === 0xd7 && buf[pos + 2] === EVENT_TIME_EXT && pos + 12 <= end) {
    // [fixext8 EventTime, fixmap]: inline, with the uint32s read byte by byte (Buffer's readers check bounds per call)
    head.timeForm = TimeForm.EventTime;
    head.timeStart = pos + 1;
    head.seconds = buf[pos + 3] * 0x1000000 + ((buf[pos + 4] << 16) | (buf[pos + 5] << 8) | buf[pos + 6]);
    head.nanoseconds = buf[pos + 7] * 0x1000000 + ((buf[pos + 8] << 16) | (buf[pos + 9] << 8) | buf[pos + 10]);
    head.metaStart = -1;
    head.metaEnd = -1;
    head.recordStart = pos + 11;
    if ((buf[pos + 11] & 0xf0) === 0x80) return EntryFault.None;
    return readMapHeader(buf, pos + 11, end) ? EntryFault.None : EntryFault.RecordNotMap;
  }
  let p: number;
  if (b === 0x92) p = pos + 1;
  else {
    const arr = readArrayHeader(buf, pos, end);
    if (!arr || arr.count !== 2) return EntryFault.NotPair;
    p = arr.next;
  }
  head.metaStart = -1;
  head.metaEnd = -1;
  let t = readTime(buf, p, end, head);
  if (t < 0) {
    const pair = readArrayHeader(buf, p, end);
    if (!pair || pair.count !== 2) return EntryFault.BadTime;
    const m = readTime(buf, pair.next, end, head);
    if (m < 0) return EntryFault.BadTime;
    t = skipValue(buf, m, end);
    if (t === INCOMPLETE) return EntryFault.CutShort;
    head.metaStart = m;
    head.metaEnd = t;
  }
  head.recordStart = t;
  if (t < end && (buf[t] & 0xf0) === 0x80) return EntryFault.None;
  return readMapHeader(buf, t, end) ? EntryFault.None : EntryFault.RecordNotMap;
}

/** False when the entry read into `head` has metadata that is not a map (the grammar says map). */
export function metadataIsMap(buf: Buffer, head: EntryHead): boolean {
  return head.metaStart < 0 || readMapHeader(buf, head.metaStart, head.metaEnd) !== null;
}

/** The sentence (after "Entry n") that names an entry fault. */
export function entryFaultText(fault: EntryFault): string {
  switch (fault) {
    case EntryFault.NotPair:
      return 'is not a 2-element array [time, record]';
    case EntryFault.BadTime:
      return 'has no valid time (int, float, EventTime or [EventTime, map])';
    case EntryFault.MetadataNotMap:
      return 'has [time, metadata] whose metadata is not a map';
    case EntryFault.CutShort:
      return 'is cut short';
    default:
      return 'has a record that is not a map';
  }
}

/** Position just past a `time` value (or `[time, metadata-map]`) at `pos`, or -1 when the value is not a valid time. */
export function skipTime(buf: Buffer, pos: number, end: number, head: EntryHead = newEntryHead()): number {
  const t = readTime(buf, pos, end, head);
  if (t >= 0) return t;
  const pair = readArrayHeader(buf, pos, end);
  if (!pair || pair.count !== 2) return -1;
  const m = readTime(buf, pair.next, end, head);
  if (m < 0 || !readMapHeader(buf, m, end)) return -1;
  const next = skipValue(buf, m, end);
  return next === INCOMPLETE ? -1 : next;
}

/**
 * Validates `buf[start, end)` as entries and returns the number of events.
 * Throws TRB_FWD_SHAPE naming the first bad entry.
 */
export function countEntries(buf: Buffer, start = 0, end = buf.length): number {
  let pos = start;
  let count = 0;
  const head = newEntryHead();
  while (pos < end) {
    let fault = readEntryHead(buf, pos, end, head);
    if (fault === EntryFault.None && head.metaStart >= 0 && !metadataIsMap(buf, head)) fault = EntryFault.MetadataNotMap;
    if (fault !== EntryFault.None) throw entryError(count, pos - start, entryFaultText(fault));
    const next = skipValue(buf, head.recordStart, end);
    if (next === INCOMPLETE) throw entryError(count, pos - start, 'is cut short');
    pos = next;
    count++;
  }
  return count;
}

/** Calls `fn(entryStart, entryEnd)` for each entry; entries must already be validated. */
export function forEachEntry(buf: Buffer, fn: (start: number, end: number) => void): void {
  let pos = 0;
  while (pos < buf.length) {
    const next = skipValue(buf, pos, buf.length);
    if (next === INCOMPLETE) throw entryError(-1, pos, 'is cut short');
    fn(pos, next);
    pos = next;
  }
}

export interface DecodedEvent {
  time: EventTime;
  record: Record<string, unknown>;
  /** Present when the sender used the `[EventTime, metadata]` time form. */
  metadata?: Record<string, unknown>;
}

const recordDecoder = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Decodes every entry into JS values. Records' str values become text. */
export function decodeEntries(buf: Buffer): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  forEachEntry(buf, (start, end) => out.push(decodeEntry(buf, start, end)));
  return out;
}

export function decodeEntry(buf: Buffer, start: number, end: number): DecodedEvent {
  const head = newEntryHead();
  const fault = readEntryHead(buf, start, end, head);
  if (fault !== EntryFault.None) throw entryError(-1, start, entryFaultText(fault));
  const time = head.timeForm === TimeForm.Float ? EventTime.fromSeconds(head.seconds) : new EventTime(head.seconds, head.nanoseconds);
  const record = recordDecoder.unpack(buf.subarray(head.recordStart, end)) as Record<string, unknown>;
  if (head.metaStart < 0) return { time, record };
  const metadata = recordDecoder.unpack(buf.subarray(head.metaStart, head.metaEnd)) as Record<string, unknown>;
  return { time, record, metadata };
}
