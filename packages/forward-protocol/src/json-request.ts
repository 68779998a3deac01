/**
 * JSON requests, as Fluentd's in_forward accepts them when a connection's
 * first byte is `[` or `{`:
 *
 *   Message  = [ tag, time, record, option? ]
 *   Forward  = [ tag, [ [time, record], ... ], option? ]
 *
 * `time` is a number of seconds (fractions kept as nanoseconds). Values are
 * framed by bracket depth outside strings, then parsed with JSON.parse and
 * re-encoded as msgpack entries, so the pipeline sees the same chunk shape as
 * for msgpack clients (a record msgpack cannot hold is refused as
 * TRB_FWD_JSON). Acks go back as JSON. Refused when auth is on.
 */
import { MAX_EVENT_SECONDS, asAdmissionError, clip } from './admission';
import { UnencodableRecord, encodeEntry } from './encoder';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { EventTime } from './event-time';
import type { ForwardChunk } from './request';

function jsonError(what: string, options: { cause?: unknown } = {}): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Json, `Invalid JSON request: ${clip(what)}.`, options);
}

/** Where a `findJsonEnd` scan stopped, to continue it when more bytes arrive. */
export interface JsonScan {
  /** Next byte to look at (may be past the end when an escape was cut). */
  pos: number;
  depth: number;
  inString: boolean;
}

/**
 * End of the JSON value starting at `pos` (an array or object), or -1 if
 * incomplete. With `scan` (fresh: `{ pos, depth: 0, inString: false }`), the
 * scan starts where the last one stopped and leaves its state there, so a
 * value split over many reads is scanned once.
 */
export function findJsonEnd(buf: Buffer, pos: number, end: number, scan: JsonScan = { pos, depth: 0, inString: false }): number {
  let depth = scan.depth;
  let inString = scan.inString;
  let i = scan.pos;
  for (; i < end; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  scan.pos = i;
  scan.depth = depth;
  scan.inString = inString;
  return -1;
}

function toTime(t: unknown): EventTime {
  if (typeof t !== 'number' || !(t >= 0 && t < MAX_EVENT_SECONDS)) {
    throw new ProtocolError(ProtocolErrorCode.BadTime, 'Refused: a JSON time is not a number of seconds in [0, 2^32).');
  }
  if (t === 0) return EventTime.now();
  return EventTime.fromSeconds(t);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseJsonRequest(text: string): ForwardChunk {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const e = asAdmissionError(err);
    throw e !== err ? e : jsonError((err as Error).message);
  }
  try {
    return toChunk(value);
  } catch (err) {
    throw asAdmissionError(err);
  }
}

function toChunk(value: unknown): ForwardChunk {
  if (!Array.isArray(value) || value.length < 2) throw jsonError('the request is not an array [tag, ...]');
  const [tag, second] = value;
  if (typeof tag !== 'string' || tag === '') throw jsonError('the tag is not a non-empty string');
  let entries: Buffer[];
  let option: unknown;
  if (Array.isArray(second)) {
    entries = second.map((e, i) => {
      if (!Array.isArray(e) || e.length !== 2 || !isRecord(e[1])) throw jsonError(`entry ${i} is not [time, record]`);
      return toEntry(toTime(e[0]), e[1], `the record of entry ${i}`);
    });
    option = value[2];
  } else {
    if (!isRecord(value[2])) throw jsonError('the record (3rd element) is not an object');
    entries = [toEntry(toTime(second), value[2], 'the record (3rd element)')];
    option = value[3];
  }
  const chunk: ForwardChunk = {
    tag,
    entries: Buffer.concat(entries),
    count: entries.length,
    mode: entries.length === 1 && !Array.isArray(second) ? 'message' : 'forward',
  };
  if (isRecord(option) && typeof option.chunk === 'string') chunk.chunkId = option.chunk;
  return chunk;
}

/**
 * The entry `[time, record]`; a record the encoder refuses (JSON can hold a
 * map with a `constructor` key and a `toJSON` that is no function, which
 * msgpackr calls) is the client's bad data, refused as TRB_FWD_JSON saying
 * which record (`what`) and where in it. Any other error as it came.
 */
function toEntry(time: EventTime, record: Record<string, unknown>, what: string): Buffer {
  try {
    return encodeEntry(time, record);
  } catch (err) {
    if (err instanceof UnencodableRecord) throw jsonError(`${what} cannot be encoded: ${err.message}`, { cause: err });
    throw err;
  }
}
