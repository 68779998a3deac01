/**
 * The door: what any input accepts, checked before the ack so that every
 * stage behind it (buffer, log, sinks) can carry what was acked.
 *
 *   tag      = 1..maxTagBytes (1024) bytes of well-formed UTF-8, no control character
 *              (C0, DEL, C1) and no U+FFFD (what invalid bytes decode to)
 *   chunk id = at most maxChunkIdBytes bytes (the text form used as a dedupe key)
 *   entry    = the grammar of entries.ts, read by its `readEntryHead` (any
 *              header width, Fluent Bit's `[[time, metadata], record]`)
 *   time     = int | float | EventTime, in [0, 2^32) seconds; EventTime
 *              nanoseconds below 1e9; floats finite
 *   metadata = map, nested at most maxRecordDepth deep, like a record
 *   record   = map, containers nested at most maxRecordDepth deep (the record
 *              itself is depth 1); ext types and non-string keys are accepted:
 *              egress carries them
 *   event    = at most maxEventBytes bytes, when set (the forwarder sets its
 *              chunk limit, as Fluentd refuses a record larger than its chunk)
 *
 * Reference limits: Fluent Bit truncates tags at 65,535 bytes minus its chunk
 * metadata header (`FLB_INPUT_CHUNK_TAG_MAX`, flb_input_chunk.h); Fluentd sets
 * none. 1,024 bytes holds Kubernetes-style tags (pod, namespace, container
 * and id) with room; every stage carries it (the file and S3 sinks shorten a
 * tag's path segment to a bounded prefix plus a hash).
 * Everything refused throws a `ProtocolError` with one of the admission codes.
 */
import type { ErrorCode } from '@tributary/core';
import { EntryFault, type EntryHead, TimeForm, entryFaultText, metadataIsMap, newEntryHead, readEntryHead } from './entries';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { FIXED_SIZE, INCOMPLETE, isStr, readBytes, skipValue } from './msgpack-scan';
import type { ForwardChunk } from './request';

export interface AdmissionLimits {
  maxTagBytes: number;
  maxChunkIdBytes: number;
  maxRecordDepth: number;
  /** Largest single `[time, record]` entry; unbounded when absent. */
  maxEventBytes?: number;
}

/**
 * A tag is one path segment in the file and S3 sinks; egress cuts a segment
 * longer than 180 bytes to a prefix plus a hash of the whole tag (Linux
 * NAME_MAX is 255 bytes, an S3 key 1,024), so any tag up to this bound is
 * written, and `_tag` in every line keeps it whole.
 */
export const DEFAULT_MAX_TAG_BYTES = 1024;
export const DEFAULT_MAX_CHUNK_ID_BYTES = 128;
export const DEFAULT_MAX_RECORD_DEPTH = 64;
/** EventTime's seconds are an unsigned 32-bit number (Forward Protocol v1, "EventTime Ext Format"). */
export const MAX_EVENT_SECONDS = 2 ** 32;

export const DEFAULT_ADMISSION: AdmissionLimits = Object.freeze({
  maxTagBytes: DEFAULT_MAX_TAG_BYTES,
  maxChunkIdBytes: DEFAULT_MAX_CHUNK_ID_BYTES,
  maxRecordDepth: DEFAULT_MAX_RECORD_DEPTH,
});

/** Cuts a client-supplied string for a log line or an error message. */
export function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

function refuse(code: ErrorCode, what: string): ProtocolError {
  return new ProtocolError(code, `Refused: ${what}.`);
}

/** Throws TRB_FWD_BAD_TAG unless `tag` follows the tag rule. */
export function checkTag(tag: string, limits: AdmissionLimits = DEFAULT_ADMISSION): void {
  if (tag.length === 0) throw refuse(ProtocolErrorCode.BadTag, 'the tag is empty');
  const bytes = Buffer.byteLength(tag, 'utf8');
  if (bytes > limits.maxTagBytes) {
    throw refuse(ProtocolErrorCode.BadTag, `the tag is ${bytes} bytes, over the limit of ${limits.maxTagBytes} `);
  }
  for (let i = 0; i < tag.length; i++) {
    const c = tag.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      // A surrogate must be a high one followed by a low one.
      const low = tag.charCodeAt(i + 1);
      if (c >= 0xdc00 || !(low >= 0xdc00 && low <= 0xdfff)) throw refuse(ProtocolErrorCode.BadTag, 'the tag is not well-formed UTF-16');
      i++;
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      throw refuse(ProtocolErrorCode.BadTag, `the tag holds control character 0x${c.toString(16).padStart(2, '0')} at ${i}`);
    }
    if (c === 0xfffd) throw refuse(ProtocolErrorCode.BadTag, 'the tag is not valid UTF-8 (or holds U+FFFD)');
  }
}

/** Throws TRB_FWD_BAD_CHUNK_ID when the chunk id is longer than the limit. */
export function checkChunkId(chunkId: string | undefined, limits: AdmissionLimits = DEFAULT_ADMISSION): void {
  if (chunkId === undefined) return;
  const bytes = Buffer.byteLength(chunkId, 'utf8');
  if (bytes > limits.maxChunkIdBytes) {
    throw refuse(ProtocolErrorCode.BadChunkId, `the chunk id is ${bytes} bytes, over the limit of ${limits.maxChunkIdBytes}`);
  }
}

/**
 * `checkChunkId` of the `chunk` value `buf[pos, end)` (a str or bin), from
 * its length where that decides (bin: its base64 text; str: its bytes, a
 * third of the limit or less, can decode to no more than the limit), else of its text.
 */
export function checkChunkIdValue(buf: Buffer, pos: number, end: number, limits: AdmissionLimits = DEFAULT_ADMISSION): void {
  const bytes = readBytes(buf, pos, end);
  if (!bytes) throw refuse(ProtocolErrorCode.BadChunkId, 'the chunk id is neither str nor bin');
  const n = bytes.end - bytes.start;
  if (!isStr(buf, pos)) {
    const textBytes = 4 * Math.ceil(n / 3);
    if (textBytes > limits.maxChunkIdBytes) {
      throw refuse(ProtocolErrorCode.BadChunkId, `the chunk id is ${textBytes} bytes, over the limit of ${limits.maxChunkIdBytes}`);
    }
    return;
  }
  // Invalid UTF-8 decodes to U+FFFD, three bytes for at most one byte sent.
  if (n * 3 > limits.maxChunkIdBytes) checkChunkId(buf.toString('utf8', bytes.start, bytes.end), limits);
}

function entryRefusal(code: ErrorCode, index: number, what: string): ProtocolError {
  return refuse(code, `entry ${index} ${what}`);
}

function checkSeconds(s: number, index: number): void {
  if (!(s >= 0 && s < MAX_EVENT_SECONDS)) {
    throw entryRefusal(ProtocolErrorCode.BadTime, index, `has time ${s}, outside [0, 2^32) seconds`);
  }
}

/**
 * Reads the head of the entry at `pos` (the shared reader, `readEntryHead`)
 * and checks its time against the time rule and its metadata, when it has
 * some, against the depth rule. Returns where the record starts.
 * `stack` as for `admitValue`.
 */
function admitHead(
  buf: Buffer,
  pos: number,
  end: number,
  index: number,
  limits: AdmissionLimits,
  head: EntryHead,
  stack?: number[],
): number {
  let fault = readEntryHead(buf, pos, end, head);
  if (fault === EntryFault.None && head.metaStart >= 0 && !metadataIsMap(buf, head)) fault = EntryFault.MetadataNotMap;
  if (fault !== EntryFault.None) throw entryRefusal(ProtocolErrorCode.Shape, index, entryFaultText(fault));
  if (head.timeForm === TimeForm.EventTime) {
    if (head.nanoseconds >= 1e9) {
      throw entryRefusal(ProtocolErrorCode.BadTime, index, `has EventTime nanoseconds ${head.nanoseconds}, not below 1e9`);
    }
  } else checkSeconds(head.seconds, index);
  if (head.metaStart >= 0) admitValue(buf, head.metaStart, end, index, limits.maxRecordDepth, stack);
  return head.recordStart;
}

/**
 * Where the value at `pos` ends, refusing containers nested deeper than
 * `maxDepth` (a scalar is depth 0, `{}` depth 1). Linear in the bytes, no recursion.
 * The open container's remaining count lives in a local; `stack` (the
 * remaining children of each enclosing container but the outermost, scratch
 * space the caller may reuse across calls: `admitEntries` passes one to
 * every entry) is touched only when a nested container opens or closes.
 */
function admitValue(buf: Buffer, pos: number, end: number, index: number, maxDepth: number, stack: number[] = []): number {
  let depth = 0;
  let remaining = 1;
  for (;;) {
    while (remaining === 0) {
      if (depth === 0) {
        // an inlined scalar may claim bytes past the end: the value is cut short
        if (pos > end) throw entryRefusal(ProtocolErrorCode.Shape, index, 'is cut short');
        return pos;
      }
      remaining = --depth === 0 ? 0 : stack[depth - 1];
    }
    remaining--;
    if (pos >= end) throw entryRefusal(ProtocolErrorCode.Shape, index, 'is cut short');
    const b = buf[pos];
    // Scalars of a fixed size (and fixstr) step over inline: a call per value was most of the rule's cost.
    const size = FIXED_SIZE[b];
    if (size !== 0) {
      pos += size;
      continue;
    }
    if (b === 0xd9 && pos + 2 <= end) {
      pos += 2 + buf[pos + 1];
      continue;
    }
    let children = -1;
    let header = 1;
    if (b >= 0x80 && b <= 0x8f) children = (b & 0x0f) * 2;
    else if (b >= 0x90 && b <= 0x9f) children = b & 0x0f;
    else if ((b === 0xdc || b === 0xde) && pos + 3 <= end) {
      children = buf.readUInt16BE(pos + 1) * (b === 0xde ? 2 : 1);
      header = 3;
    } else if ((b === 0xdd || b === 0xdf) && pos + 5 <= end) {
      children = buf.readUInt32BE(pos + 1) * (b === 0xdf ? 2 : 1);
      header = 5;
    }
    if (children < 0) {
      const next = skipValue(buf, pos, end);
      if (next === INCOMPLETE) throw entryRefusal(ProtocolErrorCode.Shape, index, 'is cut short');
      pos = next;
      continue;
    }
    pos += header;
    if (depth + 1 > maxDepth) {
      throw entryRefusal(ProtocolErrorCode.TooDeep, index, `nests containers deeper than ${maxDepth} (max_record_depth)`);
    }
    // More children than bytes left cannot all be there: cut short (and the count stays a small integer).
    if (children > end - pos) throw entryRefusal(ProtocolErrorCode.Shape, index, 'is cut short');
    if (children > 0) {
      // the top level's count (0: one value) is not kept, so a flat record never touches the stack
      if (depth > 0) stack[depth - 1] = remaining; // depth - 1 <= stack.length: it grows by one at most
      depth++;
      remaining = children;
    }
  }
}

/**
 * Validates `buf[start, end)` as entries against the rule and returns the
 * number of events. Throws a coded ProtocolError naming the first bad entry.
 */
export function admitEntries(buf: Buffer, limits: AdmissionLimits = DEFAULT_ADMISSION, start = 0, end = buf.length): number {
  let pos = start;
  let count = 0;
  const stack: number[] = [];
  const head = newEntryHead();
  while (pos < end) {
    const next = admitValue(buf, admitHead(buf, pos, end, count, limits, head, stack), end, count, limits.maxRecordDepth, stack);
    if (limits.maxEventBytes !== undefined && next - pos > limits.maxEventBytes) {
      throw entryRefusal(
        ProtocolErrorCode.EventTooLarge,
        count,
        `is ${next - pos} bytes, over the limit of ${limits.maxEventBytes} (the buffer's chunk_limit_bytes)`,
      );
    }
    pos = next;
    count++;
  }
  return count;
}

/**
 * The rule for one entry `buf[start, end)` that the framer scanned whole,
 * holding at most `maxRecordDepth` maps and arrays in all: they cannot nest
 * deeper than that, and every length in it is within `end`, so the walk over
 * the record that `admitEntries` makes would find nothing; its head (time,
 * metadata, that the record is a map) and the size are checked.
 */
export function admitShallowEntry(
  buf: Buffer,
  limits: AdmissionLimits,
  start: number,
  end: number,
  head: EntryHead = newEntryHead(),
): void {
  admitHead(buf, start, end, 0, limits, head);
  if (limits.maxEventBytes !== undefined && end - start > limits.maxEventBytes) {
    throw entryRefusal(
      ProtocolErrorCode.EventTooLarge,
      0,
      `is ${end - start} bytes, over the limit of ${limits.maxEventBytes} (the buffer's chunk_limit_bytes)`,
    );
  }
}

/** True for a stack overflow: a parser or the encoder recursed through a value nested too deep. */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/**
 * A stack overflow while decoding or encoding a client's value (a parser
 * that recurses) becomes TRB_FWD_TOO_DEEP; any other error is returned as is.
 */
export function asAdmissionError(err: unknown): unknown {
  if (isStackOverflow(err)) {
    return refuse(ProtocolErrorCode.TooDeep, 'a value is nested too deep to decode');
  }
  return err;
}

/** The whole rule for one chunk: tag, chunk id and every entry. Returns the chunk. */
export function admitChunk(chunk: ForwardChunk, limits: AdmissionLimits = DEFAULT_ADMISSION): ForwardChunk {
  checkTag(chunk.tag, limits);
  checkChunkId(chunk.chunkId, limits);
  admitEntries(chunk.entries, limits);
  return chunk;
}
