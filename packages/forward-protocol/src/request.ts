/**
 * Event-mode requests (Forward Protocol v1, "Event Modes"), all normalised to
 * one PackedForward-shaped chunk so the rest of the pipeline handles one shape:
 *
 *   Message                  = [ tag, time, record, option? ]
 *   Forward                  = [ tag, [ entry* ], option? ]
 *   PackedForward            = [ tag, str|bin entries, option? ]
 *   CompressedPackedForward  = [ tag, str|bin gzip(entries), option{compressed:"gzip"} ]
 *   option                   = map { chunk?, size?, compressed?, fluent_signal?, … }
 *
 * The mode is chosen by the type of the 2nd element. Entries of PackedForward
 * are validated and counted in place, never re-encoded; Forward entries are
 * copied byte for byte. `ack` keeps the chunk option's raw msgpack bytes so the
 * acknowledgement echoes them exactly (Fluentd compares byte for byte).
 */
import { gunzipSync } from 'node:zlib';
import { gunzipChunkSize } from '@tributary/core';
import { chunkIdOf } from './ack';
import { type AdmissionLimits, admitEntries, checkChunkId, checkTag, clip } from './admission';
import { type EntryHead, countEntries, skipTime } from './entries';
import { ProtocolError, ProtocolErrorCode, shapeError } from './errors';
import { EVENT_TIME_BYTES, writeEventTime } from './event-time';
import { INCOMPLETE, isStr, readArrayHeader, readBytes, readInt, readMapHeader, skipValue } from './msgpack-scan';

export type EventMode = 'message' | 'forward' | 'packed' | 'compressed';

export interface ForwardChunk {
  tag: string;
  /** Concatenated msgpack `[time, record]` entries, uncompressed. */
  entries: Buffer;
  /**
   * CompressedPackedForward: the gzip bytes as they came, which inflate to
   * exactly `entries` (a view of the frame, like `entries` otherwise). Whoever
   * changes `entries` drops it; a durable log may store it instead of
   * compressing `entries` again.
   */
  gzipped?: Buffer;
  /** Number of events in `entries`. */
  count: number;
  mode: EventMode;
  /** The `chunk` option as text (for logs and dedupe keys), when the sender asked for an ack. */
  chunkId?: string;
  /** The `chunk` option's raw msgpack value (header included), echoed in the ack. */
  ack?: Buffer;
  /** `fluent_signal` option: 0 logs, 1 metrics, 2 traces. */
  signal?: number;
  /**
   * A run of fluent-logger's acked messages of one tag from one read, merged
   * (the coalescer's `mergeAcked`): the ids of its `count` events, in order.
   * Such a chunk has no `chunkId` nor `ack` of its own.
   */
  ids?: AckedRun;
  /**
   * The forwarder buffer's hash of this chunk's resend key (its id, tag,
   * count and size), set by its `skipAcked` on the chunks it lets through.
   * A chunk cut in pieces keeps it on its last piece, the one that keeps its
   * `chunkId`: that piece is remembered under the whole chunk's key, which a
   * resend of the chunk has.
   */
  resendHash?: Uint32Array;
}

/** The client chunk ids the chunks carry: one per chunk with a `chunkId`, one per event of a merged run (`ids`). */
export function countChunkIds(chunks: ForwardChunk[]): number {
  let n = 0;
  for (const c of chunks) n += chunkIdCount(c);
  return n;
}

/** The client chunk ids one chunk carries: a merged run's, its own, or none. */
export function chunkIdCount(c: ForwardChunk): number {
  return c.ids ? c.ids.sizes.length : c.chunkId !== undefined ? 1 : 0;
}

/** The chunk ids of a merged run of acked messages (`ForwardChunk.ids`). */
export interface AckedRun {
  /** Each event's `chunk` id as text, in order (`chunkIdOf` of its bytes in `acks`). */
  readonly chunkIds: string[];
  /** Each event's entry size in bytes, in order: `entries` is their concatenation as read. */
  readonly sizes: number[];
  /** The run's acks, `{"ack": id}` each, encoded back to back in order (`writeAck`; `forEachAckedId` reads their ids). */
  readonly acks: Buffer;
}

export interface RequestLimits {
  /** Largest decompressed entries accepted, in bytes. */
  maxDecompressedBytes: number;
  /**
   * The caller owns `frame` and will not read it again: a Message-mode entry is
   * then made in place (one header byte overwritten) instead of copied.
   */
  reuseFrame?: boolean;
  /** Refuse what breaks the admission rule (tag, chunk id, times, depth, event size) with its coded error. */
  admission?: AdmissionLimits;
  /** The connection's tag cache, when the caller reads one connection (senders repeat a few tags). */
  tags?: TagCache;
}

export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

interface Options {
  ack?: Buffer;
  chunkId?: string;
  compressed?: string;
  signal?: number;
}

function readOptions(buf: Buffer, pos: number, end: number): Options {
  const map = readMapHeader(buf, pos, end);
  if (!map) throw shapeError('the option element is not a map');
  const out: Options = {};
  let p = map.next;
  for (let i = 0; i < map.count; i++) {
    const key = readBytes(buf, p, end);
    const valueStart = key ? key.end : skipValue(buf, p, end);
    if (valueStart === INCOMPLETE) throw shapeError('the option map is cut short');
    const valueEnd = skipValue(buf, valueStart, end);
    if (valueEnd === INCOMPLETE) throw shapeError('the option map is cut short');
    const name = key ? buf.toString('latin1', key.start, key.end) : '';
    if (name === 'chunk') {
      out.chunkId = chunkIdText(buf, valueStart, end);
      out.ack = buf.subarray(valueStart, valueEnd);
    } else if (name === 'compressed') {
      const bytes = readBytes(buf, valueStart, end);
      if (!bytes) throw shapeError('option "compressed" is not a string');
      out.compressed = buf.toString('latin1', bytes.start, bytes.end);
    } else if (name === 'fluent_signal') {
      out.signal = readInt(buf, valueStart, end)?.value;
    }
    p = valueEnd;
  }
  return out;
}

function inflate(data: Buffer, codec: string, limits: RequestLimits): Buffer {
  if (codec !== 'gzip') {
    throw new ProtocolError(ProtocolErrorCode.Compression, `Compression "${clip(codec, 40)}" is not supported (supported: gzip, text).`);
  }
  try {
    return gunzipSync(data, { maxOutputLength: limits.maxDecompressedBytes, chunkSize: gunzipChunkSize(data) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ProtocolError(
        ProtocolErrorCode.DecompressTooLarge,
        `Decompressed entries exceed the limit of ${limits.maxDecompressedBytes} bytes (maxDecompressedBytes).`,
      );
    }
    throw new ProtocolError(ProtocolErrorCode.Compression, `The gzip entries could not be inflated: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

const ENTRY_HEADER = Buffer.from([0x92]);

/**
 * One connection's last tag. Senders repeat a few tags: while the bytes
 * repeat, `decode` returns the same string without decoding, and `admit`
 * does not check it again under the same limits. Owned by whoever reads one
 * connection (the coalescer; a caller of `parseRequest` through `RequestLimits.tags`).
 */
export class TagCache {
  private bytes = Buffer.alloc(0);
  private tag = '';
  private admittedUnder: AdmissionLimits | null = null;

  /** The tag string of `buf[start, end)`, the same string instance while the bytes repeat. */
  decode(buf: Buffer, start: number, end: number): string {
    const last = this.bytes;
    const len = end - start;
    if (len === last.length) {
      // A byte loop: Buffer.compare's native call costs more than the compare for tag-sized inputs.
      let i = 0;
      while (i < len && buf[start + i] === last[i]) i++;
      if (i === len) return this.tag;
    }
    this.bytes = Buffer.from(buf.subarray(start, end));
    this.tag = this.bytes.toString('utf8');
    this.admittedUnder = null;
    return this.tag;
  }

  /**
   * The last tag, when the value at `buf[pos]` is a fixstr holding its very
   * bytes and it was admitted under `limits`: what `decode` then `admit`
   * would return, without reading the header twice; else null (nothing changes).
   */
  admittedAt(buf: Buffer, pos: number, limits: AdmissionLimits): string | null {
    const last = this.bytes;
    const len = last.length;
    if (buf[pos] !== (0xa0 | len) || len === 0 || len > 31 || limits !== this.admittedUnder) return null;
    for (let i = 0; i < len; i++) if (buf[pos + 1 + i] !== last[i]) return null;
    return this.tag;
  }

  /** The last tag's length in bytes (its UTF-8 form; `admittedAt` matched that many). */
  get byteLength(): number {
    return this.bytes.length;
  }

  /** `checkTag(tag, limits)`, skipped when `tag` is the last one decoded and already admitted under `limits`. */
  admit(tag: string, limits: AdmissionLimits): void {
    if (tag === this.tag && limits === this.admittedUnder) return;
    checkTag(tag, limits);
    if (tag === this.tag) this.admittedUnder = limits;
  }
}

/** Where `isPlainMessage` (or `isAckedMessage`) found a request's parts; the caller owns it and reuses it (no allocation per message). */
export interface MessageParts {
  tagStart: number;
  tagEnd: number;
  entryStart: number;
  /** `isAckedMessage` only: where the record ends and the `chunk` value (header included) starts; it ends the frame. */
  recordEnd: number;
  ackStart: number;
  /** Scratch for reading the time (and, in the coalescer, admitting the entry): no allocation per message. */
  head: EntryHead;
}

/**
 * Recognises the commonest request on the wire, a Message-mode
 * `[tag, time, record]` with three elements (no option), a non-zero int,
 * float or EventTime time and a map record, in the complete frame
 * `buf[start, end)`; fills `parts`. Its entry is then
 * `buf[entryStart, end)` once `buf[entryStart]` (the tag's last byte) is set
 * to 0x92. Anything else — options, time 0, `[EventTime, metadata]`, other
 * modes, bad shapes — returns false and goes through `parseRequest`, which
 * also reports the errors.
 */
export function isPlainMessage(buf: Buffer, start: number, end: number, parts: MessageParts): boolean {
  return buf[start] === 0x93 && messageHead(buf, start, end, parts) >= 0;
}

/** `fixmap(1) { fixstr "chunk" : … }`: an option map holding only the chunk id, as fluent-logger sends it. */
const CHUNK_ONLY_OPTION = Buffer.from([0x81, 0xa5, 0x63, 0x68, 0x75, 0x6e, 0x6b]);

/**
 * Where the `chunk` value starts when `CHUNK_ONLY_OPTION` follows the record
 * ending at `recordEnd` (INCOMPLETE: not known) with a value after it before
 * `end`; else -1.
 */
export function chunkOnlyOptionValue(buf: Buffer, recordEnd: number, end: number): number {
  if (recordEnd < 0 || recordEnd + CHUNK_ONLY_OPTION.length >= end) return -1;
  for (let i = 0; i < CHUNK_ONLY_OPTION.length; i++) if (buf[recordEnd + i] !== CHUNK_ONLY_OPTION[i]) return -1;
  return recordEnd + CHUNK_ONLY_OPTION.length;
}

/**
 * Recognises fluent-logger's request, a Message-mode
 * `[tag, time, record, {"chunk": id}]`: `isPlainMessage`'s shape plus a 4th
 * element, an option map holding only `chunk` (str or bin), which ends the
 * frame; fills `parts` (`recordEnd` and `ackStart` too). `knownRecordEnd`,
 * when not -1, is where the frame's third element ends (the framer's
 * `frameThirdEnds`): the record is then not walked again. Its entry is made
 * as `isPlainMessage`'s, its ack is `buf[ackStart, end)`. Anything else
 * returns false and goes through `parseRequest`.
 */
export function isAckedMessage(buf: Buffer, start: number, end: number, parts: MessageParts, knownRecordEnd = -1): boolean {
  if (buf[start] !== 0x94) return false;
  const recordStart = messageHead(buf, start, end, parts);
  if (recordStart < 0) return false;
  const recordEnd = knownRecordEnd >= 0 ? knownRecordEnd : skipValue(buf, recordStart, end);
  const ackStart = chunkOnlyOptionValue(buf, recordEnd, end);
  if (ackStart < 0 || skipValue(buf, ackStart, end) !== end || !readBytes(buf, ackStart, end)) return false;
  parts.recordEnd = recordEnd;
  parts.ackStart = ackStart;
  return true;
}

/** The checks `isPlainMessage` and `isAckedMessage` share, from the tag on: fills `parts` and returns where the record starts, or -1. */
function messageHead(buf: Buffer, start: number, end: number, parts: MessageParts): number {
  const tagBytes = readBytes(buf, start + 1, end);
  if (!tagBytes || tagBytes.end === tagBytes.start || !isStr(buf, start + 1)) return -1;
  const second = tagBytes.end;
  const t = buf[second];
  // 0: "now" (parseRequest stamps it); arrays: Forward mode or [EventTime, metadata]; str/bin: PackedForward.
  if (t === 0x00 || (t & 0xf0) === 0x90 || t === 0xdc || t === 0xdd || readBytes(buf, second, end)) return -1;
  const timeEnd = skipTime(buf, second, end, parts.head);
  if (timeEnd < 0 || !readMapHeader(buf, timeEnd, end)) return -1;
  parts.tagStart = tagBytes.start;
  parts.tagEnd = tagBytes.end;
  parts.entryStart = second - 1;
  return timeEnd;
}

/** The `chunk` option at `buf[pos, end)` (a str or bin value) as text: `ForwardChunk.chunkId`. */
export function chunkIdText(buf: Buffer, pos: number, end: number): string {
  const bytes = readBytes(buf, pos, end);
  if (!bytes) throw shapeError('option "chunk" is neither str nor bin');
  return chunkIdOf(buf, bytes.start, bytes.end, isStr(buf, pos));
}

/**
 * Parses one complete request frame. The returned chunk references `frame`'s
 * memory (no copy): the caller owns `frame` and must not reuse it. A Message-mode
 * event sent with time 0 gets the current time (Fluentd's "now").
 */
export function parseRequest(
  frame: Buffer,
  limits: RequestLimits = { maxDecompressedBytes: DEFAULT_MAX_DECOMPRESSED_BYTES },
): ForwardChunk {
  const end = frame.length;
  const arr = readArrayHeader(frame, 0, end);
  if (!arr) throw shapeError('the request is not an array');
  if (arr.count < 2 || arr.count > 4) throw shapeError(`the request array has ${arr.count} elements (expected 2 to 4)`);
  const tagBytes = readBytes(frame, arr.next, end);
  if (!tagBytes || !isStr(frame, arr.next)) throw shapeError('the tag (1st element) is not a string');
  const tags = limits.tags;
  const tag = tags ? tags.decode(frame, tagBytes.start, tagBytes.end) : frame.toString('utf8', tagBytes.start, tagBytes.end);
  if (tag.length === 0) throw shapeError('the tag is empty');
  const admission = limits.admission;
  if (admission) {
    if (tags) tags.admit(tag, admission);
    else checkTag(tag, admission);
  }
  const count = (entries: Buffer) => (admission ? admitEntries(entries, admission) : countEntries(entries));
  const second = tagBytes.end;
  const secondArr = readArrayHeader(frame, second, end);
  // An array 2nd element is Forward mode, unless it is a `[EventTime, metadata]` time (Message mode).
  if (secondArr && (secondArr.count === 0 || readArrayHeader(frame, secondArr.next, end) !== null)) {
    // Forward: [tag, [entry, ...], option?]
    const entriesEnd = skipValue(frame, second, end);
    if (entriesEnd === INCOMPLETE) throw shapeError('the entries array is cut short');
    const options = arr.count >= 3 ? readOptions(frame, entriesEnd, end) : {};
    const entries = frame.subarray(secondArr.next, entriesEnd);
    const n = count(entries);
    if (n !== secondArr.count) throw shapeError(`the entries array says ${secondArr.count} entries but holds ${n}`);
    return { tag, entries, count: n, mode: 'forward', ...pick(options, admission) };
  }

  const packed = readBytes(frame, second, end);
  if (packed) {
    // PackedForward / CompressedPackedForward: [tag, str|bin, option?]
    const options = arr.count >= 3 ? readOptions(frame, packed.end, end) : {};
    const raw = frame.subarray(packed.start, packed.end);
    const compressed = options.compressed !== undefined && options.compressed !== 'text';
    if (!compressed) return { tag, entries: raw, count: count(raw), mode: 'packed', ...pick(options, admission) };
    const entries = inflate(raw, options.compressed as string, limits);
    return { tag, entries, gzipped: raw, count: count(entries), mode: 'compressed', ...pick(options, admission) };
  }

  // Message: [tag, time, record, option?]
  const timeEnd = skipTime(frame, second, end);
  if (timeEnd < 0) throw shapeError('the 2nd element is neither a time, an entries array nor packed entries');
  if (arr.count < 3 || !readMapHeader(frame, timeEnd, end))
    throw shapeError('the record (3rd element) of a Message-mode request is not a map');
  // A framed 3-element request ends where its record ends: no need to walk the record again.
  const recordEnd = arr.count === 3 ? end : skipValue(frame, timeEnd, end);
  if (recordEnd === INCOMPLETE) throw shapeError('the record is cut short');
  const options = arr.count === 4 ? readOptions(frame, recordEnd, end) : {};
  let entries: Buffer;
  if (frame[second] === 0x00) {
    // time 0 means "now" (Fluentd in_forward)
    const now = Date.now();
    entries = Buffer.allocUnsafe(1 + EVENT_TIME_BYTES + (recordEnd - timeEnd));
    entries[0] = 0x92;
    writeEventTime(entries, 1, Math.floor(now / 1000), (now % 1000) * 1_000_000);
    frame.copy(entries, 1 + EVENT_TIME_BYTES, timeEnd, recordEnd);
  } else if (limits.reuseFrame) {
    // The byte before `time` is the tag's last byte, already decoded: it becomes the entry's array header.
    frame[second - 1] = 0x92;
    entries = frame.subarray(second - 1, recordEnd);
  } else {
    entries = Buffer.concat([ENTRY_HEADER, frame.subarray(second, recordEnd)]);
  }
  if (admission) admitEntries(entries, admission);
  return { tag, entries, count: 1, mode: 'message', ...pick(options, admission) };
}

function pick(o: Options, admission: AdmissionLimits | undefined): Pick<ForwardChunk, 'ack' | 'chunkId' | 'signal'> {
  if (admission) checkChunkId(o.chunkId, admission);
  const out: Pick<ForwardChunk, 'ack' | 'chunkId' | 'signal'> = {};
  if (o.ack) {
    out.ack = o.ack;
    out.chunkId = o.chunkId;
  }
  if (o.signal !== undefined) out.signal = o.signal;
  return out;
}
