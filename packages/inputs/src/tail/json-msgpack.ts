/**
 * A JSON object line → its MessagePack map, straight from the line's bytes:
 * no string decode, no JavaScript object, no second encode. The tail input's
 * `json` parser takes this path when no time key is read from the record;
 * the bytes it writes are the ones `JSON.parse` and the forward encoder
 * (msgpackr) give for the same line:
 *
 * - maps and arrays with the smallest header (fixmap/fixarray, 16, 32);
 * - strings as UTF-8 with the smallest str header, escapes decoded;
 * - numbers as msgpackr writes a JavaScript number: an integer in
 *   [-2^31, 2^32) as the smallest int (-0 as 0), anything else as float64;
 * - true, false, null.
 *
 * A line this path leaves to `JSON.parse` (it returns -1, and the caller
 * takes the general path, which also says why a line does not parse):
 * anything but one JSON object, bytes that are not UTF-8, a key with an
 * escape, a key `JSON.parse` would move (an array index: JavaScript puts
 * those first), a key twice in one object (the last one wins there), a map
 * of more than MAX_CHECKED_KEYS keys (the duplicate check compares each key
 * with the earlier ones), a lone surrogate escape (msgpackr writes one
 * differently in short and long strings), or more than MAX_DEPTH levels.
 *
 * Two passes over the line: the first checks the grammar and counts each
 * map's and array's members (its header comes before them), the second
 * writes.
 */
import { isUtf8 } from 'node:buffer';

/** Nesting deeper than this is left to JSON.parse. */
const MAX_DEPTH = 64;
/** A map with more keys than this is left to JSON.parse: the duplicate check is quadratic in them. */
const MAX_CHECKED_KEYS = 64;

// The bytes the grammar turns on (plain constants, which V8 inlines).
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Thrown inside a pass to leave the line to JSON.parse (never escapes `transcode`). */
const FALLBACK = new Error('json fast path: left to JSON.parse');

export class JsonTranscoder {
  /**
   * False for a `path_key` that JavaScript would place first in an object (an
   * array index) or take for the prototype: the lines then go the general way
   * (JSON.parse), whose key order this path could not match.
   */
  static takesPathKey(key: string): boolean {
    const bytes = Buffer.from(key);
    return key !== '__proto__' && !isIndexKey(bytes, 0, bytes.length);
  }

  /** Members of each map and array, in the order they open. */
  private counts = new Int32Array(256);
  private containers = 0;
  /** Key ranges of the maps being checked, for the duplicate check. */
  private keys = new Int32Array(512);
  private keyCount = 0;
  private src: Buffer = Buffer.alloc(0);
  private reservedKey: Buffer | null = null;
  private end = 0;
  private out: Buffer = Buffer.alloc(0);

  /**
   * Writes the map of the JSON object `src[a, b)` at `out[o]`, with
   * `extraPairs` more pairs counted in its header (the caller writes them
   * after it); returns where it ends, or -1 when the line is left to
   * JSON.parse, or has the top-level key `reservedKey` (one the caller sets
   * itself). `out` must have room for `maxBytes(b - a)`. `knownUtf8`: the
   * caller checked a span holding the line (one check per read, not per line).
   */
  transcode(
    src: Buffer,
    a: number,
    b: number,
    out: Buffer,
    o: number,
    extraPairs = 0,
    reservedKey: Buffer | null = null,
    knownUtf8 = false,
  ): number {
    if (!knownUtf8 && b - a > 0 && !isUtf8(src.subarray(a, b))) return -1;
    this.reservedKey = reservedKey;
    this.src = src;
    this.end = b;
    this.containers = 0;
    this.keyCount = 0;
    try {
      let p = this.ws(a);
      if (p >= b || src[p] !== OPEN_BRACE) return -1;
      p = this.ws(this.checkValue(p, 0));
      if (p !== b) return -1;
      this.out = out;
      return this.writeValue(a, o, extraPairs);
    } catch (err) {
      if (err === FALLBACK) return -1;
      throw err;
    } finally {
      this.src = EMPTY;
      this.out = EMPTY;
    }
  }

  /** The most bytes the map of a line of `n` bytes takes (a short float grows most: "1.5," is 4 bytes, its float64 9). */
  static maxBytes(n: number): number {
    return 3 * n + 16;
  }

  // ── pass 1: grammar, counts, keys ─────────────────────────────────────

  private ws(p: number): number {
    const src = this.src;
    const end = this.end;
    while (p < end) {
      const c = src[p];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    return p;
  }

  /** Checks the value at `p` (no whitespace before it); returns where it ends. */
  private checkValue(p: number, depth: number): number {
    const src = this.src;
    if (p >= this.end) throw FALLBACK;
    const c = src[p];
    if (c === OPEN_BRACE) return this.checkObject(p, depth + 1);
    if (c === OPEN_BRACKET) return this.checkArray(p, depth + 1);
    if (c === QUOTE) return this.checkString(p);
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.checkNumber(p);
    if (c === 0x74) return this.literal(p, TRUE);
    if (c === 0x66) return this.literal(p, FALSE);
    if (c === 0x6e) return this.literal(p, NULL);
    throw FALLBACK;
  }

  private literal(p: number, word: Uint8Array): number {
    if (p + word.length > this.end) throw FALLBACK;
    for (let i = 0; i < word.length; i++) if (this.src[p + i] !== word[i]) throw FALLBACK;
    return p + word.length;
  }

  private container(): number {
    if (this.containers === this.counts.length) {
      const grown = new Int32Array(this.counts.length * 2);
      grown.set(this.counts);
      this.counts = grown;
    }
    this.counts[this.containers] = 0;
    return this.containers++;
  }

  private checkObject(p: number, depth: number): number {
    if (depth > MAX_DEPTH) throw FALLBACK;
    const src = this.src;
    const index = this.container();
    const firstKey = this.keyCount;
    let n = 0;
    p = this.ws(p + 1);
    if (src[p] === CLOSE_BRACE) return p + 1;
    for (;;) {
      if (src[p] !== QUOTE) throw FALLBACK;
      const keyEnd = this.checkString(p);
      if (this.escaped || isIndexKey(src, p + 1, keyEnd - 1)) throw FALLBACK;
      if (depth === 1 && this.reservedKey !== null && src.compare(this.reservedKey, 0, this.reservedKey.length, p + 1, keyEnd - 1) === 0)
        throw FALLBACK;
      this.checkNewKey(firstKey, p + 1, keyEnd - 1);
      p = this.ws(keyEnd);
      if (src[p] !== COLON) throw FALLBACK;
      p = this.ws(this.checkValue(this.ws(p + 1), depth));
      n++;
      if (src[p] === COMMA) {
        p = this.ws(p + 1);
        continue;
      }
      if (src[p] !== CLOSE_BRACE) throw FALLBACK;
      this.counts[index] = n;
      this.keyCount = firstKey;
      return p + 1;
    }
  }

  /** Throws when the key `src[a, b)` is already one of this map's keys; else remembers it. */
  private checkNewKey(firstKey: number, a: number, b: number): void {
    if (this.keyCount - firstKey >= MAX_CHECKED_KEYS) throw FALLBACK;
    const src = this.src;
    const keys = this.keys;
    for (let k = firstKey; k < this.keyCount; k++) {
      const ka = keys[2 * k];
      if (keys[2 * k + 1] - ka !== b - a) continue;
      let same = true;
      for (let i = 0; i < b - a; i++) {
        if (src[ka + i] !== src[a + i]) {
          same = false;
          break;
        }
      }
      if (same) throw FALLBACK;
    }
    if (2 * this.keyCount + 2 > keys.length) {
      const grown = new Int32Array(keys.length * 2);
      grown.set(keys);
      this.keys = grown;
    }
    this.keys[2 * this.keyCount] = a;
    this.keys[2 * this.keyCount + 1] = b;
    this.keyCount++;
  }

  private checkArray(p: number, depth: number): number {
    if (depth > MAX_DEPTH) throw FALLBACK;
    const src = this.src;
    const index = this.container();
    let n = 0;
    p = this.ws(p + 1);
    if (src[p] === CLOSE_BRACKET) return p + 1;
    for (;;) {
      p = this.ws(this.checkValue(p, depth));
      n++;
      if (src[p] === COMMA) {
        p = this.ws(p + 1);
        continue;
      }
      if (src[p] !== CLOSE_BRACKET) throw FALLBACK;
      this.counts[index] = n;
      return p + 1;
    }
  }

  /** Set by `checkString`: whether the string it checked has escapes. */
  private escaped = false;

  /** Checks the string at `p` (its opening quote); returns where it ends (after the closing quote), `escaped` set. */
  private checkString(p: number): number {
    const src = this.src;
    const end = this.end;
    let escaped = false;
    for (let i = p + 1; i < end; i++) {
      const c = src[i];
      if (c === QUOTE) {
        this.escaped = escaped;
        return i + 1;
      }
      if (c < 0x20) throw FALLBACK; // a raw control character: JSON.parse refuses it
      if (c !== BACKSLASH) continue;
      escaped = true;
      const e = src[++i];
      if (e === 0x75) {
        if (i + 4 >= end) throw FALLBACK;
        for (let k = 1; k <= 4; k++) if (hexValue(src[i + k]) < 0) throw FALLBACK;
        const unit = hex4(src, i + 1);
        i += 4;
        if (unit >= 0xdc00 && unit <= 0xdfff) throw FALLBACK; // a low surrogate not after a high one
        if (unit >= 0xd800 && unit <= 0xdbff) {
          // a high surrogate must be followed by a low one: a lone surrogate is written as msgpackr writes it,
          // which depends on the string's length (three bytes below 64 units, U+FFFD above), so it goes the general way
          if (i + 6 >= end || src[i + 1] !== BACKSLASH || src[i + 2] !== 0x75) throw FALLBACK;
          for (let k = 3; k <= 6; k++) if (hexValue(src[i + k]) < 0) throw FALLBACK;
          const low = hex4(src, i + 3);
          if (low < 0xdc00 || low > 0xdfff) throw FALLBACK;
          i += 6;
        }
      } else if (!(e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)) {
        throw FALLBACK;
      }
    }
    throw FALLBACK;
  }

  /** Checks JSON's number grammar at `p`: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  private checkNumber(p: number): number {
    const src = this.src;
    const end = this.end;
    if (src[p] === MINUS) p++;
    if (p >= end) throw FALLBACK;
    if (src[p] === ZERO) p++;
    else if (src[p] >= 0x31 && src[p] <= NINE) p = digits(src, p, end);
    else throw FALLBACK;
    if (p < end && src[p] === DOT) {
      const q = digits(src, p + 1, end);
      if (q === p + 1) throw FALLBACK;
      p = q;
    }
    if (p < end && (src[p] === 0x65 || src[p] === 0x45)) {
      p++;
      if (p < end && (src[p] === PLUS || src[p] === MINUS)) p++;
      const q = digits(src, p, end);
      if (q === p) throw FALLBACK;
      p = q;
    }
    return p;
  }

  // ── pass 2: writing (the grammar is known good) ───────────────────────

  /** The next map or array to write (its index in `counts`). */
  private nextContainer = 0;
  /** Where pass 2 reads: after each `write`, just past the value written. */
  private at = 0;

  /** Writes the value at or after `p` at `out[o]`, `extra` pairs added to its map's count; returns where it ends in `out`. */
  private writeValue(p: number, o: number, extra: number): number {
    this.nextContainer = 0;
    this.at = p;
    return this.write(o, extra);
  }

  /** Writes the value at or after `at` at `out[o]`; returns where it ends in `out`, `at` moved past it. */
  private write(o: number, extra: number): number {
    const src = this.src;
    const out = this.out;
    let p = this.ws(this.at);
    const c = src[p];
    if (c === OPEN_BRACE) {
      o = mapHeader(out, o, this.counts[this.nextContainer++] + extra);
      p = this.ws(p + 1);
      if (src[p] === CLOSE_BRACE) {
        this.at = p + 1;
        return o;
      }
      for (;;) {
        this.at = p;
        o = this.writeString(o);
        this.at = this.ws(this.at) + 1; // past the colon
        o = this.write(o, 0);
        p = this.ws(this.at);
        if (src[p] !== COMMA) break;
        p = this.ws(p + 1);
      }
      this.at = p + 1;
      return o;
    }
    if (c === OPEN_BRACKET) {
      o = arrayHeader(out, o, this.counts[this.nextContainer++]);
      p = this.ws(p + 1);
      if (src[p] === CLOSE_BRACKET) {
        this.at = p + 1;
        return o;
      }
      for (;;) {
        this.at = p;
        o = this.write(o, 0);
        p = this.ws(this.at);
        if (src[p] !== COMMA) break;
        p = this.ws(p + 1);
      }
      this.at = p + 1;
      return o;
    }
    this.at = p;
    if (c === QUOTE) return this.writeString(o);
    if (c === 0x74 || c === 0x66 || c === 0x6e) {
      out[o] = c === 0x74 ? 0xc3 : c === 0x66 ? 0xc2 : 0xc0;
      this.at = p + (c === 0x66 ? 5 : 4);
      return o + 1;
    }
    return this.writeNumber(o);
  }

  /** Writes the string at `at` (its opening quote). */
  private writeString(o: number): number {
    const src = this.src;
    const out = this.out;
    const p = this.at;
    let q = p + 1;
    let escaped = false;
    while (src[q] !== QUOTE) {
      if (src[q] === BACKSLASH) {
        escaped = true;
        q++;
      }
      q++;
    }
    this.at = q + 1;
    if (!escaped) {
      o = strHeader(out, o, q - p - 1);
      return copyBytes(src, p + 1, q, out, o);
    }
    // decoded in place in `out`, after room for the longest header: escapes only shrink a string
    const n = decodeEscapes(src, p + 1, q, out, o + 5);
    const header = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    if (header !== 5) out.copyWithin(o + header, o + 5, o + 5 + n);
    strHeader(out, o, n);
    return o + header + n;
  }

  /** Writes the number at `at`. */
  private writeNumber(o: number): number {
    const src = this.src;
    let p = this.at;
    const start = p;
    let negative = false;
    if (src[p] === MINUS) {
      negative = true;
      p++;
    }
    let plain = true;
    let v = 0;
    const digitsStart = p;
    while (p < this.end) {
      const c = src[p];
      if (c >= ZERO && c <= NINE) {
        v = v * 10 + (c - ZERO);
        p++;
      } else if (c === DOT || c === 0x65 || c === 0x45 || c === PLUS || c === MINUS) {
        plain = false;
        p++;
      } else break;
    }
    this.at = p;
    // up to 15 digits an integer is exact as accumulated; otherwise JavaScript's own reading, as JSON.parse's
    if (!plain || p - digitsStart > 15) v = Number(src.toString('latin1', start, p));
    else if (negative) v = -v;
    return writeJsNumber(this.out, o, v);
  }
}

const EMPTY = Buffer.alloc(0);
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function digits(src: Buffer, p: number, end: number): number {
  while (p < end && src[p] >= ZERO && src[p] <= NINE) p++;
  return p;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** True for a key JavaScript orders before the others: an array index ("0", or 1-9 then digits, below 2^32 - 1). */
function isIndexKey(src: Buffer, a: number, b: number): boolean {
  const n = b - a;
  if (n === 0 || n > 10) return false;
  if (src[a] === ZERO) return n === 1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = src[i];
    if (c < ZERO || c > NINE) return false;
    v = v * 10 + (c - ZERO);
  }
  return v < 2 ** 32 - 1;
}

/** Copies `src[a, b)` to `out[o]`; returns where it ends. Byte by byte below 64 bytes, where `Buffer#copy`'s call costs more than the copy. */
function copyBytes(src: Buffer, a: number, b: number, out: Buffer, o: number): number {
  if (b - a >= 64) return o + src.copy(out, o, a, b);
  for (let i = a; i < b; i++) out[o++] = src[i];
  return o;
}

/** Decodes the escapes of the string body `src[a, b)` (known good) into `out[from]` as UTF-8; returns the bytes written. */
function decodeEscapes(src: Buffer, a: number, b: number, out: Buffer, from: number): number {
  let o = from;
  for (let i = a; i < b; i++) {
    const c = src[i];
    if (c !== BACKSLASH) {
      out[o++] = c;
      continue;
    }
    const e = src[++i];
    if (e !== 0x75) {
      out[o++] = e === 0x62 ? 0x08 : e === 0x66 ? 0x0c : e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e;
      continue;
    }
    let cp = hex4(src, i + 1);
    i += 4;
    if (cp >= 0xd800 && cp <= 0xdbff && src[i + 1] === BACKSLASH && src[i + 2] === 0x75) {
      const low = hex4(src, i + 3);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      }
    }
    // (pass 1 let no lone surrogate through)
    if (cp < 0x80) out[o++] = cp;
    else if (cp < 0x800) {
      out[o++] = 0xc0 | (cp >> 6);
      out[o++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[o++] = 0xe0 | (cp >> 12);
      out[o++] = 0x80 | ((cp >> 6) & 0x3f);
      out[o++] = 0x80 | (cp & 0x3f);
    } else {
      out[o++] = 0xf0 | (cp >> 18);
      out[o++] = 0x80 | ((cp >> 12) & 0x3f);
      out[o++] = 0x80 | ((cp >> 6) & 0x3f);
      out[o++] = 0x80 | (cp & 0x3f);
    }
  }
  return o - from;
}

function hex4(src: Buffer, p: number): number {
  return (hexValue(src[p]) << 12) | (hexValue(src[p + 1]) << 8) | (hexValue(src[p + 2]) << 4) | hexValue(src[p + 3]);
}

function mapHeader(out: Buffer, o: number, n: number): number {
  if (n < 16) {
    out[o] = 0x80 | n;
    return o + 1;
  }
  if (n < 0x10000) {
    out[o] = 0xde;
    out.writeUInt16BE(n, o + 1);
    return o + 3;
  }
  out[o] = 0xdf;
  out.writeUInt32BE(n, o + 1);
  return o + 5;
}

function arrayHeader(out: Buffer, o: number, n: number): number {
  if (n < 16) {
    out[o] = 0x90 | n;
    return o + 1;
  }
  if (n < 0x10000) {
    out[o] = 0xdc;
    out.writeUInt16BE(n, o + 1);
    return o + 3;
  }
  out[o] = 0xdd;
  out.writeUInt32BE(n, o + 1);
  return o + 5;
}

function strHeader(out: Buffer, o: number, n: number): number {
  if (n < 32) {
    out[o] = 0xa0 | n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = 0xd9;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = 0xda;
    out.writeUInt16BE(n, o + 1);
    return o + 3;
  }
  out[o] = 0xdb;
  out.writeUInt32BE(n, o + 1);
  return o + 5;
}

/** A JavaScript number as msgpackr writes it: an integer in [-2^31, 2^32) as the smallest int, else float64. */
function writeJsNumber(out: Buffer, o: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) {
      out[o] = v;
      return o + 1;
    }
    if (v < 0x100) {
      out[o] = 0xcc;
      out[o + 1] = v;
      return o + 2;
    }
    if (v < 0x10000) {
      out[o] = 0xcd;
      out.writeUInt16BE(v, o + 1);
      return o + 3;
    }
    out[o] = 0xce;
    out.writeUInt32BE(v, o + 1);
    return o + 5;
  }
  if (v >> 0 === v) {
    if (v >= -0x20) {
      out[o] = v & 0xff;
      return o + 1;
    }
    if (v >= -0x80) {
      out[o] = 0xd0;
      out.writeInt8(v, o + 1);
      return o + 2;
    }
    if (v >= -0x8000) {
      out[o] = 0xd1;
      out.writeInt16BE(v, o + 1);
      return o + 3;
    }
    out[o] = 0xd2;
    out.writeInt32BE(v, o + 1);
    return o + 5;
  }
  out[o] = 0xcb;
  out.writeDoubleBE(v, o + 1);
  return o + 9;
}
