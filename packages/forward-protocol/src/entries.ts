/**
 * PackedForward entries: the grammar every mode is normalised to.
 *
 *   entries  = *entry                       ; msgpack values back to back
 *   entry    = array(2) [ time, record ]
 *   time     = int | float | EventTime | array(2) [ EventTime, metadata-map ]
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

/** Position just past a `time` value at `pos`, or -1 when the value is not a valid time. */
export function skipTime(buf: Buffer, pos: number, end: number): number {
  const b = buf[pos];
  if (b === 0xd7 && buf[pos + 1] === EVENT_TIME_EXT) return pos + 10 <= end ? pos + 10 : -1;
  if (b === 0xc7 && buf[pos + 1] === 8 && buf[pos + 2] === EVENT_TIME_EXT) return pos + 11 <= end ? pos + 11 : -1;
  if (b === 0xca) return pos + 5 <= end ? pos + 5 : -1;
  if (b === 0xcb) return pos + 9 <= end ? pos + 9 : -1;
  const int = readInt(buf, pos, end);
  if (int) return int.next;
  const arr = readArrayHeader(buf, pos, end);
  if (arr && arr.count === 2) {
    const t = skipTime(buf, arr.next, end);
    if (t < 0 || readArrayHeader(buf, arr.next, end) || !readMapHeader(buf, t, end)) return -1;
    const m = skipValue(buf, t, end);
    return m === INCOMPLETE ? -1 : m;
  }
  return -1;
}

/**
 * Validates `buf[start, end)` as entries and returns the number of events.
 * Throws TRB_FWD_SHAPE naming the first bad entry.
 */
export function countEntries(buf: Buffer, start = 0, end = buf.length): number {
  let pos = start;
  let count = 0;
  while (pos < end) {
    const arr = readArrayHeader(buf, pos, end);
    if (!arr || arr.count !== 2) throw entryError(count, pos - start, 'is not a 2-element array [time, record]');
    const t = skipTime(buf, arr.next, end);
    if (t < 0) throw entryError(count, pos - start, 'has no valid time (int, float, EventTime or [EventTime, map])');
    if (!readMapHeader(buf, t, end)) throw entryError(count, pos - start, 'has a record that is not a map');
    const next = skipValue(buf, t, end);
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

function readTime(buf: Buffer, pos: number, end: number): EventTime {
  const b = buf[pos];
  if (b === 0xd7) return new EventTime(buf.readUInt32BE(pos + 2), buf.readUInt32BE(pos + 6));
  if (b === 0xc7) return new EventTime(buf.readUInt32BE(pos + 3), buf.readUInt32BE(pos + 7));
  if (b === 0xca || b === 0xcb) {
    return EventTime.fromSeconds(b === 0xca ? buf.readFloatBE(pos + 1) : buf.readDoubleBE(pos + 1));
  }
  const int = readInt(buf, pos, end);
  if (int) return new EventTime(int.value, 0);
  throw entryError(-1, pos, 'has no valid time');
}

/** Decodes every entry into JS values. Records' str values become text. */
export function decodeEntries(buf: Buffer): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  forEachEntry(buf, (start, end) => out.push(decodeEntry(buf, start, end)));
  return out;
}

export function decodeEntry(buf: Buffer, start: number, end: number): DecodedEvent {
  const arr = readArrayHeader(buf, start, end);
  if (!arr) throw entryError(-1, start, 'is not an array');
  const timeStart = arr.next;
  const timeEnd = skipTime(buf, timeStart, end);
  const record = recordDecoder.unpack(buf.subarray(timeEnd, end)) as Record<string, unknown>;
  const tArr = readArrayHeader(buf, timeStart, end);
  if (tArr) {
    const metaStart = skipTime(buf, tArr.next, end);
    const metadata = recordDecoder.unpack(buf.subarray(metaStart, timeEnd)) as Record<string, unknown>;
    return { time: readTime(buf, tArr.next, end), record, metadata };
  }
  return { time: readTime(buf, timeStart, end), record };
}
