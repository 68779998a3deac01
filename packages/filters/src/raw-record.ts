/**
 * A record kept as its msgpack bytes while filters read and change only a
 * few top-level keys (grep, throttle, record's set / remove / rename /
 * keep): a pair a filter does not touch is copied as it came, a value is
 * decoded only when read, a new value is packed alone. It follows a JS
 * object's key order (a new key goes last, a set of an existing key keeps
 * its place, a removed and set key goes last), so it writes the same bytes
 * as decoding the record, applying the same filters and packing it whole
 * would, for a map of distinct str keys (anything else takes the decoding
 * path). Pairs are offsets into the bytes: no object per pair.
 */
import * as scan from '@tributary/forward-protocol';
import { Unpackr } from 'msgpackr';
import type { Output } from './output';

// bound once: a call through the package's re-export reads a getter every time (measurable per pair)
const { INCOMPLETE, packPair, readMapHeader, skipValue } = scan;

/** Pair offsets of the record being filtered (four per pair), reused by every parse. */
let scratch = new Int32Array(256);

/**
 * Slots of key hashes, stamped with the parse that used them: equal keys
 * hash alike, so a record whose keys all take distinct slots has no repeated
 * key and needs no exact check (one in ~12 shapes of 7 keys collides).
 */
const keySlots = new Uint16Array(256);
let keyStamp = 0;

/** A value msgpackr cannot decode (an ext type it does not know): the entry passes on as it came. */
export class UnreadableValue extends Error {}

// 'auto': 64-bit ints beyond 2^53 stay exact (bigint) and pack back as they came; msgpackr supports it, its types omit it
const decoder = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' });

/** msgpackr's unpack, its failures as UnreadableValue (so a filter's own bug is never taken for bad data). */
export const unpackr = {
  unpack(bytes: Buffer): unknown {
    try {
      return decoder.unpack(bytes);
    } catch (err) {
      throw new UnreadableValue((err as Error).message);
    }
  },
};

/** A value a filter set: the value, and the pair's packed bytes when known (a constant: one object for every event). */
export interface Added {
  key: string;
  value: unknown;
  packed?: Buffer;
  /** The key's UTF-8 bytes, when the filter has them (a constant): not looked up per event. */
  keyBytes?: Buffer;
}

/** UTF-8 bytes of the keys filters ask for (from configs: few), so a lookup compares bytes and makes no string. */
const keyBytes = new Map<string, Buffer>();
export function bytesOf(key: string): Buffer {
  let b = keyBytes.get(key);
  if (!b) {
    if (keyBytes.size >= 4096) keyBytes.clear();
    b = Buffer.from(key, 'utf8');
    keyBytes.set(key, b);
  }
  return b;
}

export class RawRecord {
  /**
   * The pairs in output order, or null while that is the original pairs
   * then `added`: an id below `count` is the original pair of that index
   * (its offsets at `off[4 * id]`: key, name, value start, value end),
   * unless `replaced` has it; a higher id is `added[id - count]`.
   */
  private order: number[] | null = null;
  private replaced: Map<number, Added> | null = null;
  /** `added[0, addedCount)`: the array is kept across records, so adding a pair allocates nothing. */
  private readonly added: Added[] = [];
  private addedCount = 0;
  private body: Buffer = Buffer.alloc(0);
  private count = 0;
  private off: Int32Array = scratch;
  /** Where the record's map ends. */
  end = 0;
  /** Where the value `rawValue` found ends. */
  valueEnd = 0;

  /** The one record every parse fills (records are filtered one at a time: no object per event). */
  private static readonly reused = new RawRecord();

  private reset(body: Buffer, count: number, off: Int32Array, end: number): this {
    this.body = body;
    this.count = count;
    this.off = off;
    this.end = end;
    this.order = null;
    this.replaced = null;
    this.addedCount = 0;
    return this;
  }

  /**
   * The record whose map starts at `buf[start]` (ending by `end`), or null
   * when it is not a map of distinct str keys (the decoding path handles
   * those). Valid until the next parse: the pairs' offsets live in an array
   * every parse reuses.
   */
  static parse(buf: Buffer, start: number, end: number): RawRecord | null {
    let n: number;
    let p: number;
    const h = buf[start];
    if (h >= 0x80 && h <= 0x8f) {
      n = h & 0x0f;
      p = start + 1;
    } else {
      const map = readMapHeader(buf, start, end);
      if (!map) return null;
      n = map.count;
      p = map.next;
    }
    if (scratch.length < n * 4) scratch = new Int32Array(Math.max(n * 4, scratch.length * 2));
    const off = scratch;
    if (++keyStamp === 0x10000) {
      keySlots.fill(0);
      keyStamp = 1;
    }
    let collided = false;
    for (let i = 0; i < n; i++) {
      const b = buf[p];
      let name: number;
      let keyEnd: number;
      if (b >= 0xa0 && b <= 0xbf) {
        name = p + 1;
        keyEnd = name + (b & 0x1f);
      } else if (b === 0xd9) {
        name = p + 2;
        keyEnd = name + buf[p + 1];
      } else return null;
      if (keyEnd > end) return null;
      const len = keyEnd - name;
      const slot = len === 0 ? 0 : (len * 31 + buf[name] * 7 + buf[keyEnd - 1]) & 255;
      if (keySlots[slot] === keyStamp) collided = true;
      else keySlots[slot] = keyStamp;
      off[4 * i] = p;
      off[4 * i + 1] = name;
      off[4 * i + 2] = keyEnd;
      p = skipScalar(buf, keyEnd);
      if (p < 0) p = skipValue(buf, keyEnd, end);
      if (p === INCOMPLETE || p > end) return null;
      off[4 * i + 3] = p;
    }
    const record = RawRecord.reused.reset(buf, n, off, p);
    return collided && record.hasRepeatedKey() ? null : record;
  }

  private hasRepeatedKey(): boolean {
    const { body, off, count } = this;
    if (count > 32) {
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) seen.add(body.toString('utf8', off[4 * i + 1], off[4 * i + 2]));
      return seen.size !== count;
    }
    // Only keys of the same length can be equal: a mask of the lengths seen (mod 32) finds those that repeat, and
    // only keys of a repeated length are compared (most records: none, or one pair).
    let seen = 0;
    let repeated = 0;
    for (let i = 0; i < count; i++) {
      const bit = 1 << ((off[4 * i + 2] - off[4 * i + 1]) & 31);
      repeated |= seen & bit;
      seen |= bit;
    }
    if (repeated === 0) return false;
    for (let i = 1; i < count; i++) {
      const ni = off[4 * i + 1];
      const len = off[4 * i + 2] - ni;
      if ((repeated & (1 << (len & 31))) === 0) continue;
      for (let j = 0; j < i; j++) {
        const nj = off[4 * j + 1];
        if (len !== off[4 * j + 2] - nj) continue;
        let k = 0;
        while (k < len && body[ni + k] === body[nj + k]) k++;
        if (k === len) return true;
      }
    }
    return false;
  }

  private ids(): number[] {
    if (!this.order) {
      this.order = [];
      for (let i = 0; i < this.count + this.addedCount; i++) this.order.push(i);
    }
    return this.order;
  }

  private size(): number {
    return this.order ? this.order.length : this.count + this.addedCount;
  }

  private idAt(at: number): number {
    return this.order ? this.order[at] : at;
  }

  /** Where `key` (its UTF-8 bytes `kb`) is in the output order, or -1. */
  private find(key: string, kb: Buffer = bytesOf(key)): number {
    const { body, off, count } = this;
    const n = this.size();
    for (let at = 0; at < n; at++) {
      const id = this.idAt(at);
      if (id >= count) {
        if (this.added[id - count].key === key) return at;
        continue;
      }
      const start = off[4 * id + 1];
      if (off[4 * id + 2] - start !== kb.length) continue;
      let i = 0;
      while (i < kb.length && body[start + i] === kb[i]) i++;
      if (i === kb.length) return at;
    }
    return -1;
  }

  private setOf(id: number): Added | undefined {
    return id >= this.count ? this.added[id - this.count] : this.replaced?.get(id);
  }

  /** The record's bytes (what `rawValue`'s offsets index). */
  get bytes(): Buffer {
    return this.body;
  }

  /**
   * Where the packed value of a top-level key starts in `bytes` as it came
   * (its end in `valueEnd`); -1 when the key is absent, -2 when a filter set
   * it (`get` reads that). A filter can compare value bytes without decoding.
   */
  rawValue(key: string, kb: Buffer): number {
    const at = this.find(key, kb);
    if (at < 0) return -1;
    const id = this.idAt(at);
    if (this.setOf(id)) return -2;
    this.valueEnd = this.off[4 * id + 3];
    return this.off[4 * id + 2];
  }

  has(key: string): boolean {
    return this.find(key) >= 0;
  }

  /** The decoded value of a top-level key (undefined when absent). A filter must not change what it gets. */
  get(key: string): unknown {
    const at = this.find(key);
    if (at < 0) return undefined;
    const id = this.idAt(at);
    const set = this.setOf(id);
    if (set) return set.value;
    const { body } = this;
    const start = this.off[4 * id + 2];
    const end = this.off[4 * id + 3];
    const b = body[start];
    // strings, the common case, without a call into msgpackr
    if (b >= 0xa0 && b <= 0xbf) return text(body, start + 1, end);
    if (b === 0xd9) return text(body, start + 2, end);
    return unpackr.unpack(body.subarray(start, end));
  }

  /** Sets a top-level key (in its place when present, else last). */
  set(key: string, value: unknown): void {
    this.setEntry({ key, value });
  }

  /** Sets a top-level key to a value given with its packed pair (a constant, the same object for every event). */
  setEntry(entry: Added): void {
    const at = this.find(entry.key, entry.keyBytes);
    if (at < 0) {
      this.order?.push(this.count + this.addedCount);
      this.added[this.addedCount++] = entry;
      return;
    }
    const id = this.idAt(at);
    if (id >= this.count) this.added[id - this.count] = entry;
    else {
      this.replaced ??= new Map();
      this.replaced.set(id, entry);
    }
  }

  delete(key: string): boolean {
    const at = this.find(key);
    if (at < 0) return false;
    this.ids().splice(at, 1);
    return true;
  }

  /** Moves a key's value under another top-level key (as delete and set); false when it is absent. */
  rename(from: string, to: string): boolean {
    if (!this.has(from)) return false;
    const value = this.get(from);
    this.delete(from);
    this.set(to, value);
    return true;
  }

  /** Keeps only `keys`, in the order they are listed (as a record rebuilt key by key). */
  keep(keys: readonly string[]): void {
    const order: number[] = [];
    for (const k of keys) {
      const at = this.find(k);
      if (at >= 0 && !order.includes(this.idAt(at))) order.push(this.idAt(at));
    }
    this.order = order;
  }

  /**
   * Appends the whole entry: `buf[pos, start)` (its array header and time,
   * as they came), then the record; or, when a set value cannot be packed
   * (packPair throws: UnencodableRecord, a stack overflow), nothing: `out`
   * is as it was, and the error propagates. When the pairs kept their first
   * order and only pairs were added after them, the entry is one copy, its
   * fixmap header patched, then the added pairs.
   */
  writeEntry(out: Output, pos: number, start: number): void {
    const written = out.length;
    try {
      this.writeWhole(out, pos, start);
    } catch (err) {
      out.rewind(written);
      throw err;
    }
  }

  private writeWhole(out: Output, pos: number, start: number): void {
    const n = this.size();
    if (!this.order && !this.replaced && this.body[start] === 0x80 + this.count && n < 16) {
      const header = out.length + (start - pos);
      out.copy(this.body, pos, this.end);
      out.patch(header, 0x80 | n);
      for (let i = 0; i < this.addedCount; i++) {
        const a = this.added[i];
        out.bytes(a.packed ?? packPair(a.key, a.value));
      }
      return;
    }
    out.copy(this.body, pos, start);
    this.write(out);
  }

  /** Appends the record's msgpack bytes to `out`; runs of untouched pairs in their first order are copied in one piece. */
  write(out: Output): void {
    const n = this.size();
    out.mapHeader(n);
    const { off, body } = this;
    let runStart = -1;
    let runEnd = -1;
    for (let at = 0; at < n; at++) {
      const id = this.idAt(at);
      const set = this.setOf(id);
      if (!set) {
        if (runStart >= 0 && off[4 * id] === runEnd) runEnd = off[4 * id + 3];
        else {
          if (runStart >= 0) out.copy(body, runStart, runEnd);
          runStart = off[4 * id];
          runEnd = off[4 * id + 3];
        }
        continue;
      }
      if (runStart >= 0) out.copy(body, runStart, runEnd);
      runStart = -1;
      out.bytes(set.packed ?? packPair(set.key, set.value));
    }
    if (runStart >= 0) out.copy(body, runStart, runEnd);
  }
}

/** Where the scalar at `p` ends (the common types, read inline), or -1 for the others (containers, ext, long str/bin). */
function skipScalar(buf: Buffer, p: number): number {
  const b = buf[p];
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return p + 1;
  if (b >= 0xa0 && b <= 0xbf) return p + 1 + (b & 0x1f);
  if (b === 0xd9) return p + 2 + buf[p + 1];
  if (b === 0xcb) return p + 9;
  if (b === 0xca || b === 0xce || b === 0xd2) return p + 5;
  if (b === 0xcc || b === 0xd0) return p + 2;
  if (b === 0xcd || b === 0xd1) return p + 3;
  return -1;
}

/** Short strings seen lately (a level, a status), by a hash of their bytes: a repeat makes no new string. */
const TEXT_CACHE = 256;
const cachedBytes: Array<Buffer | undefined> = new Array(TEXT_CACHE);
const cachedText: string[] = new Array(TEXT_CACHE);

/** UTF-8 text of `buf[start, end)`; a short one that repeats comes from TEXT_CACHE. */
function text(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len > 24) return buf.toString('utf8', start, end);
  let h = len;
  for (let i = start; i < end; i++) h = (h * 31 + buf[i]) | 0;
  const slot = h & (TEXT_CACHE - 1);
  const known = cachedBytes[slot];
  if (known && known.length === len) {
    let i = 0;
    while (i < len && known[i] === buf[start + i]) i++;
    if (i === len) return cachedText[slot];
  }
  const t = buf.toString('utf8', start, end);
  cachedBytes[slot] = Buffer.from(buf.subarray(start, end));
  cachedText[slot] = t;
  return t;
}
