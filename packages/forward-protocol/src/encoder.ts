/**
 * Encoders for the four event modes. Envelopes and EventTime are written by
 * hand (EventTime exactly as Fluentd writes it: fixext8 type 0); records go
 * through msgpackr with the records extension off, as Fluent peers expect.
 */
import { gzipSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { clip, isStackOverflow } from './admission';
import { EVENT_TIME_BYTES, EventTime, writeEventTime } from './event-time';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * A record msgpackr refuses to pack. msgpackr takes a map whose
 * `constructor` is not `Object` (a `constructor` key in the data) for a class
 * instance, and calls its `toJSON` when it has one: a `toJSON` that is no
 * function makes that call throw a TypeError. JSON and msgpack bodies can
 * hold such a map at any depth; every caller takes it for bad data, which
 * no retry will mend. `path` says where (`$` is the record, `$.a[0]` below it);
 * `cause` is msgpackr's TypeError.
 */
export class UnencodableRecord extends Error {
  constructor(
    readonly path: string,
    options: { cause?: unknown } = {},
  ) {
    super(`the map at ${clip(path)} has a "constructor" key and a "toJSON" key that is not a function, which msgpackr calls`, options);
    this.name = 'UnencodableRecord';
  }
}

/**
 * True when packing failed on the record itself: msgpackr refused a map of it
 * (UnencodableRecord) or it is nested past the stack. Callers that keep such
 * a record some other way (as text, as it came) rethrow anything else.
 */
export function isRecordRefusal(err: unknown): boolean {
  return err instanceof UnencodableRecord || isStackOverflow(err);
}

/**
 * The record's msgpack bytes, as every encoder here writes them (and the
 * filters when they pack a changed record again). Throws UnencodableRecord
 * for a record msgpackr refuses; any other error as it came (a stack
 * overflow for a record nested past the stack, a getter's own error).
 */
export function packRecord(record: Record<string, unknown>): Buffer {
  try {
    return packr.pack(record);
  } catch (err) {
    throw recognised(err, record, '$');
  }
}

/**
 * The msgpack bytes of one key and its value, as they appear in a record's
 * map (a filter that changes a record as bytes packs only the pairs it
 * set). Throws as `packRecord`: UnencodableRecord for a value msgpackr
 * refuses (its path is under `$.key`), any other error as it came.
 */
export function packPair(key: string, value: unknown): Buffer {
  try {
    return Buffer.concat([packr.pack(key), packr.pack(value)]);
  } catch (err) {
    throw recognised(err, value, member('$', key));
  }
}

/**
 * msgpackr's error packing `value` (at `path` in its record): UnencodableRecord
 * when it is the refusal, else the error as it came. Told by the value's
 * shape, looked for only once packing threw: the common case pays nothing,
 * and a TypeError from anything else (a getter, a bug) is not taken for bad
 * data.
 */
function recognised(err: unknown, value: unknown, path: string): unknown {
  const at = err instanceof TypeError ? refusedMapPath(value, path) : null;
  return at === null ? err : new UnencodableRecord(at, { cause: err });
}

/**
 * Where in `top` (at `root` in its record) msgpackr calls a `toJSON` that
 * is no function: the first map, in the order msgpackr packs (depth first,
 * keys in order), whose `constructor` is not Object, Array or Map and whose
 * `toJSON` is truthy and no function; null when there is none. Iterative and
 * each object once: `top` may be deep or hold a cycle. A getter that
 * throws while looking leaves the error unrecognised (null).
 */
function refusedMapPath(top: unknown, root: string): string | null {
  const pending: Array<[unknown, string]> = [[top, root]];
  const seen = new Set<object>();
  try {
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      const [value, path] = next;
      if (typeof value !== 'object' || value === null || seen.has(value) || ArrayBuffer.isView(value)) continue;
      seen.add(value);
      let children: Array<[unknown, string]>;
      if (Array.isArray(value)) children = value.map((v, i) => [v, `${path}[${i}]`]);
      else if (value instanceof Map) children = Array.from(value, ([k, v]) => [v, member(path, String(k))]);
      else {
        const map = value as Record<string, unknown>;
        const c = map.constructor;
        if (c !== Object && c !== Array && c !== Map && map.toJSON && typeof map.toJSON !== 'function') return path;
        children = Object.keys(map).map((k) => [map[k], member(path, k)]);
      }
      for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]);
    }
  } catch {
    return null;
  }
  return null;
}

/** The path of `key` under `path`: `$.a`, or `$["a b"]` for a key that is no identifier. */
function member(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

export type Time = EventTime | number | Date;

function timeBytes(time: Time): Buffer {
  if (time instanceof EventTime) {
    const b = Buffer.allocUnsafe(EVENT_TIME_BYTES);
    writeEventTime(b, 0, time.seconds, time.nanoseconds);
    return b;
  }
  if (time instanceof Date) return timeBytes(EventTime.fromDate(time));
  return packr.pack(Math.floor(time));
}

/** One `[time, record]` entry. Throws as `packRecord`. */
export function encodeEntry(time: Time, record: Record<string, unknown>): Buffer {
  const t = timeBytes(time);
  const r = packRecord(record);
  const out = Buffer.allocUnsafe(1 + t.length + r.length);
  out[0] = 0x92;
  t.copy(out, 1);
  r.copy(out, 1 + t.length);
  return out;
}

/** Request options. `chunk` asks the server for an ack. */
export interface EncodeOptions {
  chunk?: string;
  /** Number of events, as Fluentd sends it. */
  size?: number;
  compressed?: 'gzip';
  fluentSignal?: number;
}

function optionMap(o: EncodeOptions): Record<string, unknown> | undefined {
  const m: Record<string, unknown> = {};
  if (o.size !== undefined) m.size = o.size;
  if (o.compressed) m.compressed = o.compressed;
  if (o.chunk !== undefined) m.chunk = o.chunk;
  if (o.fluentSignal !== undefined) m.fluent_signal = o.fluentSignal;
  return Object.keys(m).length ? m : undefined;
}

/**
 * A msgpack length header: the fix form when `fix` is given and `n` fits it,
 * else the 8-, 16- or 32-bit form (`wide` lists their type bytes; null where
 * the family has no such form).
 */
function lengthHeader(n: number, fix: { base: number; below: number } | null, wide: [number | null, number, number]): Buffer {
  if (fix && n < fix.below) return Buffer.from([fix.base | n]);
  if (wide[0] !== null && n < 0x100) return Buffer.from([wide[0], n]);
  if (n < 0x10000) {
    const b = Buffer.allocUnsafe(3);
    b[0] = wide[1];
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.allocUnsafe(5);
  b[0] = wide[2];
  b.writeUInt32BE(n, 1);
  return b;
}

export function strHeader(len: number): Buffer {
  return lengthHeader(len, { base: 0xa0, below: 32 }, [0xd9, 0xda, 0xdb]);
}

function binHeader(len: number): Buffer {
  return lengthHeader(len, null, [0xc4, 0xc5, 0xc6]);
}

function arrayHeader(n: number): Buffer {
  return lengthHeader(n, { base: 0x90, below: 16 }, [null, 0xdc, 0xdd]);
}

/** Message mode: `[tag, time, record, option?]`. Throws as `packRecord`. */
export function encodeMessage(tag: string, time: Time, record: Record<string, unknown>, options: EncodeOptions = {}): Buffer {
  const opt = optionMap(options);
  const parts = [arrayHeader(opt ? 4 : 3), packr.pack(tag), timeBytes(time), packRecord(record)];
  if (opt) parts.push(packr.pack(opt));
  return Buffer.concat(parts);
}

/** Forward mode: `[tag, [entry, ...], option?]` from encoded entries. */
export function encodeForward(tag: string, entries: Buffer[], options: EncodeOptions = {}): Buffer {
  const opt = optionMap(options);
  const parts = [arrayHeader(opt ? 3 : 2), packr.pack(tag), arrayHeader(entries.length), ...entries];
  if (opt) parts.push(packr.pack(opt));
  return Buffer.concat(parts);
}

/**
 * PackedForward: `[tag, bin(entries), option]`; with `compressed: 'gzip'` the
 * entries are gzipped first (CompressedPackedForward). `entries` is the
 * concatenation of encoded entries, passed through untouched.
 */
export function encodePackedForward(tag: string, entries: Buffer, options: EncodeOptions = {}): Buffer {
  return Buffer.concat(packedForwardParts(tag, entries, options));
}

/**
 * The same request as `encodePackedForward`, as a list of buffers to write
 * with one vectored write: the entries (one buffer or several parts, as a
 * buffer stored them) are not copied unless they are compressed.
 */
export function packedForwardParts(tag: string, entries: Buffer | Buffer[], options: EncodeOptions = {}): Buffer[] {
  const parts = Buffer.isBuffer(entries) ? [entries] : entries;
  const payload = options.compressed === 'gzip' ? [gzipSync(parts.length === 1 ? parts[0] : Buffer.concat(parts), { level: 1 })] : parts;
  return packedParts(tag, payload, options);
}

/**
 * CompressedPackedForward of entries the caller already gzipped (`gzipped`
 * inflates to the entries; sent untouched): a sender that sends the same
 * entries many times, as the aggregator bench does, compresses them once.
 */
export function gzippedPackedForwardParts(tag: string, gzipped: Buffer, options: Omit<EncodeOptions, 'compressed'> = {}): Buffer[] {
  return packedParts(tag, [gzipped], { ...options, compressed: 'gzip' });
}

function packedParts(tag: string, payload: Buffer[], options: EncodeOptions): Buffer[] {
  const length = payload.reduce((n, p) => n + p.length, 0);
  const opt = optionMap(options);
  const tagBytes = Buffer.from(tag, 'utf8');
  const head = Buffer.concat([arrayHeader(opt ? 3 : 2), strHeader(tagBytes.length), tagBytes, binHeader(length)]);
  return opt ? [head, ...payload, packr.pack(opt)] : [head, ...payload];
}
