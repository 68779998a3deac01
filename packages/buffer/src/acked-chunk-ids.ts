/**
 * The client chunk ids the forwarder acked, remembered for a bounded window
 * (count and age), so a resend of an acked chunk (its ack was lost, the client
 * sends it again) is acked again without being buffered twice: the
 * aggregators' done marks, one hop earlier.
 *
 * An id is kept as a 128-bit hash of its resend key (MurmurHash3 x86_128 of
 * the key's UTF-16 code units), in typed arrays: a ring of the last
 * `maxEntries` records (oldest overwritten first) and an open-addressing
 * table over it. Nothing per id is allocated, so a window of 50,000 ids costs
 * 2 MB and no garbage, whatever the rate.
 *
 * With the disk buffer the ring is mirrored in a journal beside the chunk
 * files, so a restart remembers them. Record `seq` lives in slot
 * `seq % maxEntries`: the file never grows past `maxEntries` slots and is
 * never rewritten while running.
 *
 *   journal = slot*
 *   slot    = hash: 4 × u32 | acked at: f64 | seq: f64 | check: 2 × u32   (40 bytes; ms; the platform's byte order)
 *
 * `check` mixes the other eight words: a slot never written (zeros) or torn
 * fails it and is skipped. At open the intact slots still in the window are
 * read back in `seq` order (a journal of the earlier JSON format,
 * `acked-chunk-ids.journal`, too, which is then removed) and written to a
 * fresh journal (temp file, fdatasync, rename), numbered from 0. Byte order:
 * the platform's (a journal is read back where it was written; moved to a
 * machine of the other byte order, it is forgotten: resends stored again).
 *
 * An append's ids are written after its events and before its ack: under
 * `fsync: interval` with them (one sync tick covers both), under `always` only
 * once the events are synced, then synced themselves. The disk buffer also
 * writes them beside the events, in the chunk file's id records
 * (disk/chunk-file.ts), and `open` merges in those the journal lacks: a
 * process crash between the two writes forgets no id.
 * A torn slot can still forget one (the resend is then buffered again:
 * at-least-once), but no id is kept whose events were lost, beyond what the
 * interval policy's window already allows for acked events.
 */
import { join } from 'node:path';
import { type Filesystem, writevAllSync } from '@tributary/core';
import type { ChunkIds } from './disk/chunk-file';
import { readRecords } from './records';

export interface AckedIdsWindow {
  /** Ids remembered at most; the oldest is forgotten first. */
  maxEntries: number;
  /** How long an id is remembered after its ack (ms). */
  ttlMs: number;
}

export const JOURNAL_FILE = 'acked-chunk-ids.ring';
/** The journal of earlier versions (framed JSON records `{ t, ids }`): read once at open, then removed. */
export const LEGACY_JOURNAL_FILE = 'acked-chunk-ids.journal';

/**
 * A journal failure that does not decide the outcome of the call it happened
 * in (that call's own error, if any, is the one thrown): the step, the error,
 * and a sentence on its effect, as `StorageEvents.ioError` takes them. The
 * owner logs and counts it.
 */
export type JournalErrorReport = (op: string, err: NodeJS.ErrnoException, what: string) => void;

/** Bytes of one journal slot. */
export const SLOT_BYTES = 40;
/** Ring slots allocated at first; the ring doubles up to `maxEntries` while it fills for the first time. */
const INITIAL_CAPACITY = 1024;
/**
 * Hashes whose table lines are read ahead at once (`AckedChunkIds.prefetch`,
 * `InProgressIds.prefetch`): few enough that the lines stay cached until probed.
 */
export const PREFETCH_BLOCK = 64;

/** A slot's hash as a string, to tell the same id in two sources apart at open. */
function slotKey(s: Slot): string {
  return `${s.h0},${s.h1},${s.h2},${s.h3}`;
}

/** One remembered id, as the journal holds it. */
interface Slot {
  /** The hash, as four u32. */
  h0: number;
  h1: number;
  h2: number;
  h3: number;
  at: number;
  seq: number;
}

export class AckedChunkIds {
  /** Ring of records, oldest overwritten first: record `seq` in slot `seq % capacity`. */
  private hashes: Uint32Array;
  private ats: Float64Array;
  private capacity: number;
  /** Records made so far (the next record's sequence number). */
  private seq = 0;
  /**
   * Open-addressing table (linear probing), two words per position: the ring
   * slot + 1 of the latest record of a hash (0 = empty), and the hash's first
   * word. A probe compares that word and derives an entry's home from it in
   * the table's own cache line; the ring is read only for a likely match. (A
   * table of slots alone read the ring at every probe: a cache miss each, a
   * third of the acked path's CPU in `insert` at 16 connections.)
   */
  private table: Int32Array;
  /** Positions in the table, less one (a power of two, less one). */
  private mask: number;
  private live = 0;
  /** Scratch for the hashes of `has` and `record`'s keys (string keys: the tests' entry points; the buffer passes hashes). */
  private scratchHashes = new Uint32Array(4);

  constructor(
    private readonly window: AckedIdsWindow,
    private readonly journal: IdJournal | null = null,
  ) {
    this.capacity = Math.min(window.maxEntries, INITIAL_CAPACITY);
    this.hashes = new Uint32Array(this.capacity * 4);
    this.ats = new Float64Array(this.capacity);
    this.table = new Int32Array(2 * tableSizeFor(this.capacity));
    this.mask = tableSizeFor(this.capacity) - 1;
  }

  /** Memory only (the memory buffer: a restart loses the events anyway). */
  static inMemory(window: AckedIdsWindow): AckedChunkIds {
    return new AckedChunkIds(window);
  }

  /**
   * Loads the journal in `dir` (and an earlier version's, which is then
   * removed), keeping the ids still in the window, and writes them to a fresh
   * journal that takes the appends from then on. Failures that do not fail
   * the open (a close after the open's own error), and those of the
   * instance's writes until its owner sets `onError`, go to `report`.
   */
  static async open(
    fs: Filesystem,
    dir: string,
    window: AckedIdsWindow,
    report: JournalErrorReport,
    now = Date.now(),
    recovered: ReadonlyArray<ChunkIds> = [],
  ): Promise<AckedChunkIds> {
    const path = join(dir, JOURNAL_FILE);
    const legacyPath = join(dir, LEGACY_JOURNAL_FILE);
    const journaled = [...readLegacyJournal(await readIfThere(fs, legacyPath)), ...readSlots(await readIfThere(fs, path))];
    journaled.sort((a, b) => a.seq - b.seq);
    // Ids written beside recovered events that the journal lacks (a crash came between the two writes), merged in by
    // the time they were acked (seq -1 marks them): the newest maxEntries of both are kept, so ids of chunks still
    // buffered never push out newer journaled ones.
    const found: Slot[] = [];
    const known = recovered.length ? new Set(journaled.map(slotKey)) : new Set<string>();
    for (const r of recovered) {
      for (let i = 0; i < r.n; i++) {
        const w = i * 4;
        const slot = { h0: r.hashes[w], h1: r.hashes[w + 1], h2: r.hashes[w + 2], h3: r.hashes[w + 3], at: r.at, seq: -1 };
        const key = slotKey(slot);
        if (known.has(key)) continue;
        known.add(key);
        found.push(slot);
      }
    }
    const slots = found.length ? [...journaled, ...found].sort((a, b) => a.at - b.at) : journaled;
    const live = slots.filter((s) => s.at + window.ttlMs > now);
    const kept = live.slice(Math.max(0, live.length - window.maxEntries));
    const hashes = new Uint32Array(kept.length * 4);
    const ats = new Float64Array(kept.length);
    let fromChunks = 0;
    kept.forEach((s, i) => {
      hashes.set([s.h0, s.h1, s.h2, s.h3], i * 4);
      ats[i] = s.at;
      if (s.seq < 0) fromChunks++;
    });
    // `let`, not `const`: create reports before `ids` exists (a temp journal's close after its failed write): to `report`
    let ids: AckedChunkIds | undefined;
    const journal = IdJournal.create(fs, path, window.maxEntries, hashes, ats, (op, e, what) => (ids?.onError ?? report)(op, e, what));
    ids = new AckedChunkIds(window, journal);
    ids.recoveredFromChunks = fromChunks;
    for (let i = 0; i < kept.length; i++) ids.insert(hashes[i * 4], hashes[i * 4 + 1], hashes[i * 4 + 2], hashes[i * 4 + 3], ats[i]);
    try {
      await fs.unlink(legacyPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        ids.closeAfterFailedOpen(report);
        throw err;
      }
    }
    return ids;
  }

  /**
   * At open: the ids kept from recovered chunk files' id records that the
   * journal lacked (a crash between a group's event writes and its journal
   * write), now remembered and journaled again.
   */
  recoveredFromChunks = 0;

  /** False when the window keeps no id (`max_entries: 0`). */
  get remembers(): boolean {
    return this.window.maxEntries > 0;
  }

  /** Ids remembered (within the count; some may have aged out). */
  get size(): number {
    return this.live;
  }

  /** The journal's descriptor, for the buffer's syncs (null in memory). */
  get fd(): number | null {
    return this.journal?.fd ?? null;
  }

  /** True when the resend key `key` was acked within the window. */
  has(key: string, now = Date.now()): boolean {
    hashKey(key, this.scratchHashes);
    return this.hasHash(this.scratchHashes, 0, now);
  }

  /** True when the key whose hash is `hashes[4 * at … 4 * at + 3]` (`hashKey`) was acked within the window. */
  hasHash(hashes: Uint32Array, at: number, now = Date.now()): boolean {
    if (this.live === 0) return false;
    const w = at * 4;
    const pos = this.find(hashes[w], hashes[w + 1], hashes[w + 2], hashes[w + 3]);
    return pos >= 0 && this.ats[this.table[2 * pos] - 1] + this.window.ttlMs > now;
  }

  /** `recordHashes` of the resend keys `keys`. */
  record(keys: string[], now = Date.now()): void {
    const n = keys.length;
    if (this.scratchHashes.length < n * 4) this.scratchHashes = new Uint32Array(n * 4);
    const hs = this.scratchHashes;
    for (let i = 0; i < n; i++) hashKey(keys[i], hs, i);
    this.recordHashes(hs, n, now);
  }

  /**
   * Records the keys about to be acked whose hashes are `hashes[0 … 4n)`:
   * written to the journal (page cache), then remembered. Throws,
   * remembering nothing, when the write fails (a slot it tore fails its
   * check at the next open: that id, or the older one it overwrote, is forgotten).
   */
  recordHashes(hashes: Uint32Array, n: number, now = Date.now()): void {
    if (!n || this.window.maxEntries === 0) return;
    this.journal?.write(hashes, null, now, n);
    for (let from = 0; from < n; from += PREFETCH_BLOCK) {
      const to = Math.min(n, from + PREFETCH_BLOCK);
      this.prefetchInserts(hashes, from, to);
      for (let i = from; i < to; i++) this.insert(hashes[i * 4], hashes[i * 4 + 1], hashes[i * 4 + 2], hashes[i * 4 + 3], now);
    }
  }

  /**
   * Reads, in one pass of independent loads, the table positions that
   * `hasHash` of the hashes `hashes[4 * from … 4 * to)` will probe first, so
   * their cache misses overlap instead of each probe waiting on its own.
   */
  prefetch(hashes: Uint32Array, from: number, to: number): void {
    const { table, mask } = this;
    let sink = 0;
    for (let i = from; i < to; i++) sink ^= table[2 * (hashes[i * 4] & mask)];
    this.sink = sink;
  }

  /** `prefetch` for inserting the hashes `[from, to)`: their positions, and those of the records they overwrite (`forget`). */
  private prefetchInserts(hashes: Uint32Array, from: number, to: number): void {
    this.prefetch(hashes, from, to);
    const { table, mask, capacity, seq } = this;
    // none overwritten yet: the ring has room, or grows (up to maxEntries) before it wraps
    if (seq + to - from <= capacity || capacity < this.window.maxEntries) return;
    const ring = this.hashes;
    let sink = this.sink;
    for (let k = 0; k < to - from; k++) sink ^= table[2 * (ring[((seq + k) % capacity) * 4] & mask)];
    this.sink = sink;
  }

  /** Where `prefetch` leaves what it read, so the reads are not optimized away. */
  private sink = 0;

  /** Observer for journal failures that do not refuse the append (blanking the slots of a failed write): the owner logs and counts. */
  onError?: JournalErrorReport;

  /** Closes the journal of an instance used on its own (the disk buffer closes it through its syncs). */
  closeSync(): void {
    this.journal?.closeSync();
  }

  /** Closes the journal when the open of its owner failed: a close error goes to `report`, so the caller throws the open's own error. */
  closeAfterFailedOpen(report: JournalErrorReport): void {
    try {
      this.closeSync();
    } catch (err) {
      report(
        'close',
        err as NodeJS.ErrnoException,
        'The acked chunk id journal could not be closed after the open failed; the open fails with its own error.',
      );
    }
  }

  /** Adds the next record, forgetting the oldest when the ring is full. */
  private insert(h0: number, h1: number, h2: number, h3: number, at: number): void {
    if (this.seq >= this.capacity && this.capacity < this.window.maxEntries) this.grow();
    const slot = this.seq % this.capacity;
    if (this.seq >= this.capacity) this.forget(slot);
    const hs = this.hashes;
    hs[slot * 4] = h0;
    hs[slot * 4 + 1] = h1;
    hs[slot * 4 + 2] = h2;
    hs[slot * 4 + 3] = h3;
    this.ats[slot] = at;
    this.seq++;
    this.index(slot);
  }

  /** Points the table at ring slot `slot` as its hash's latest record (the same key again: its latest record stands). */
  private index(slot: number): void {
    const s = slot * 4;
    const { table, hashes } = this;
    // One probe: it ends at the hash's entry, or at the empty position the hash goes into.
    const pos = this.find(hashes[s], hashes[s + 1], hashes[s + 2], hashes[s + 3]);
    if (pos >= 0) {
      table[2 * pos] = slot + 1;
      return;
    }
    table[2 * ~pos] = slot + 1;
    table[2 * ~pos + 1] = hashes[s];
    this.live++;
  }

  /** The table position holding the hash, or, when none does, `~p` (negative) for the empty position `p` it would go into. */
  private find(h0: number, h1: number, h2: number, h3: number): number {
    const { table, hashes, mask } = this;
    const first = h0 | 0; // as the Int32Array holds it
    for (let p = h0 & mask; ; p = (p + 1) & mask) {
      const v = table[2 * p];
      if (v === 0) return ~p;
      if (table[2 * p + 1] !== first) continue;
      const s = (v - 1) * 4;
      if (hashes[s + 1] === h1 && hashes[s + 2] === h2 && hashes[s + 3] === h3) return p;
    }
  }

  /** Removes ring slot `slot`'s table entry, when it is still its hash's latest record (backward-shift deletion). */
  private forget(slot: number): void {
    const { table, hashes, mask } = this;
    const pos = this.find(hashes[slot * 4], hashes[slot * 4 + 1], hashes[slot * 4 + 2], hashes[slot * 4 + 3]);
    if (pos < 0 || table[2 * pos] !== slot + 1) return;
    this.live--;
    let hole = pos;
    for (let p = (hole + 1) & mask; table[2 * p] !== 0; p = (p + 1) & mask) {
      const home = table[2 * p + 1] & mask;
      // The entry at p may move back into the hole unless its home lies in (hole, p] (cyclically).
      if (hole <= p ? home <= hole || home > p : home <= hole && home > p) {
        table[2 * hole] = table[2 * p];
        table[2 * hole + 1] = table[2 * p + 1];
        hole = p;
      }
    }
    table[2 * hole] = 0;
  }

  /** Doubles the ring (up to maxEntries) before it wraps for the first time, and rebuilds the table. */
  private grow(): void {
    const capacity = Math.min(this.capacity * 2, this.window.maxEntries);
    const hashes = new Uint32Array(capacity * 4);
    hashes.set(this.hashes);
    const ats = new Float64Array(capacity);
    ats.set(this.ats);
    this.hashes = hashes;
    this.ats = ats;
    this.capacity = capacity;
    this.table = new Int32Array(2 * tableSizeFor(capacity));
    this.mask = tableSizeFor(capacity) - 1;
    this.live = 0;
    // Slots 0..seq-1 are filled (no wrap yet): re-add each hash's latest record.
    for (let slot = 0; slot < this.seq; slot++) this.index(slot);
  }
}

/** A power of two at least twice `capacity` (load factor ≤ 0.5). */
function tableSizeFor(capacity: number): number {
  let n = 2;
  while (n < capacity * 2) n *= 2;
  return n;
}

/** Scratch for `hashKey`: the key's UTF-16 code units, two per 32-bit word (`hashWords`). */
let keyWords = new Int32Array(128);

/** `hashWords` of `key`'s UTF-16 code units, into `out[4 * at … 4 * at + 3]`. */
export function hashKey(key: string, out: Uint32Array, at = 0): void {
  const n = key.length;
  if (2 * keyWords.length < n + 2) keyWords = new Int32Array(n + 2);
  packUnits(key, keyWords);
  hashWords(keyWords, n, out, at);
}

/**
 * Puts `text`'s UTF-16 code units into `words` from word 0 on, two per word,
 * the first in the low half (an odd last unit alone, in the low half of the
 * last word): `hashWords`'s input, whatever the platform's byte order.
 * `words` must have room for `(text.length + 1) >> 1` words.
 */
export function packUnits(text: string, words: Int32Array): void {
  const n = text.length;
  let j = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) words[j++] = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
  if (i < n) words[j] = text.charCodeAt(i);
}

/**
 * MurmurHash3 x86_128 of `n` UTF-16 code units held two per 32-bit word in
 * `words` (the first unit in the low half, as the callers put them, whatever
 * the platform's byte order; an odd last unit's high half is zeroed here)
 * into `out[4 * at … 4 * at + 3]`: the hash an id's resend key is remembered
 * and journaled under. Reading words, not units, halves the loads (a merged
 * run hashes one key per event).
 */
export function hashWords(words: Int32Array, n: number, out: Uint32Array, at = 0): void {
  const c1 = 0x239b961b;
  const c2 = 0xab0e9789;
  const c3 = 0x38b34ae5;
  const c4 = 0xa1e38b93;
  let h1 = 0x9747b28c;
  let h2 = 0x9747b28c;
  let h3 = 0x9747b28c;
  let h4 = 0x9747b28c;
  if (n & 1) words[n >> 1] &= 0xffff;
  // Blocks of four words; the tail is the last 1-3 words.
  const blocks = (n + 1) >> 3;
  let j = 0;
  for (let b = 0; b < blocks; b++, j += 4) {
    let k1 = Math.imul(words[j], c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, c2);
    h1 ^= k1;
    h1 = (h1 << 19) | (h1 >>> 13);
    h1 = (h1 + h2) | 0;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
    let k2 = Math.imul(words[j + 1], c2);
    k2 = (k2 << 16) | (k2 >>> 16);
    k2 = Math.imul(k2, c3);
    h2 ^= k2;
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (h2 + h3) | 0;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
    let k3 = Math.imul(words[j + 2], c3);
    k3 = (k3 << 17) | (k3 >>> 15);
    k3 = Math.imul(k3, c4);
    h3 ^= k3;
    h3 = (h3 << 15) | (h3 >>> 17);
    h3 = (h3 + h4) | 0;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;
    let k4 = Math.imul(words[j + 3], c4);
    k4 = (k4 << 18) | (k4 >>> 14);
    k4 = Math.imul(k4, c1);
    h4 ^= k4;
    h4 = (h4 << 13) | (h4 >>> 19);
    h4 = (h4 + h1) | 0;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }
  const i = j * 2; // units hashed so far
  if (i < n) {
    let k1 = Math.imul(words[j], c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, c2);
    if (i + 2 < n) {
      let k2 = Math.imul(words[j + 1], c2);
      k2 = (k2 << 16) | (k2 >>> 16);
      h2 ^= Math.imul(k2, c3);
    }
    if (i + 4 < n) {
      let k3 = Math.imul(words[j + 2], c3);
      k3 = (k3 << 17) | (k3 >>> 15);
      h3 ^= Math.imul(k3, c4);
    }
  }
  const len = n * 2;
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  const o = at * 4;
  out[o] = h1;
  out[o + 1] = h2;
  out[o + 2] = h3;
  out[o + 3] = h4;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** The check of a slot's first eight words (`u32` at `off` in `words`). */
function slotCheck(words: Uint32Array, off: number, out: Uint32Array): void {
  let a = 0x6a09e667;
  let b = 0xbb67ae85;
  for (let i = 0; i < 8; i++) {
    a = fmix32((a ^ words[off + i]) + i);
    b = fmix32(Math.imul(b ^ words[off + i], 0x9e3779b1) + a);
  }
  out[0] = a;
  out[1] = b;
}

async function readIfThere(fs: Filesystem, path: string): Promise<Buffer> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return Buffer.alloc(0);
  }
}

/** The intact slots of a journal. */
function readSlots(data: Buffer): Slot[] {
  const n = Math.floor(data.length / SLOT_BYTES);
  if (n === 0) return [];
  const copy = new ArrayBuffer(n * SLOT_BYTES); // aligned, as typed views need
  data.copy(new Uint8Array(copy), 0, 0, n * SLOT_BYTES);
  const words = new Uint32Array(copy);
  const doubles = new Float64Array(copy);
  const check = new Uint32Array(2);
  const out: Slot[] = [];
  for (let i = 0; i < n; i++) {
    const w = i * (SLOT_BYTES / 4);
    slotCheck(words, w, check);
    if (check[0] !== words[w + 8] || check[1] !== words[w + 9]) continue;
    const d = i * (SLOT_BYTES / 8);
    out.push({ h0: words[w], h1: words[w + 1], h2: words[w + 2], h3: words[w + 3], at: doubles[d + 2], seq: doubles[d + 3] });
  }
  return out;
}

/** The ids of an earlier version's journal (framed JSON records `{ t, ids }`), numbered before any slot. */
function readLegacyJournal(data: Buffer): Slot[] {
  const out: Slot[] = [];
  const h = new Uint32Array(4);
  for (const p of readRecords(data).payloads) {
    let rec: { t: number; ids: string[] };
    try {
      rec = JSON.parse(p.toString('utf8'));
    } catch {
      continue;
    }
    if (!Array.isArray(rec.ids) || typeof rec.t !== 'number') continue;
    for (const id of rec.ids) {
      if (typeof id !== 'string') continue;
      hashKey(id, h);
      out.push({ h0: h[0], h1: h[1], h2: h[2], h3: h[3], at: rec.t, seq: out.length - Number.MAX_SAFE_INTEGER });
    }
  }
  return out;
}

class IdJournal {
  /** The slots of the last write, reused: `words` and `doubles` view `out`'s memory. */
  private out = Buffer.alloc(0);
  private words = new Uint32Array(0);
  private doubles = new Float64Array(0);
  private readonly check = new Uint32Array(2);

  private constructor(
    private readonly fs: Filesystem,
    public fd: number,
    /** Slots in the ring (maxEntries). */
    private readonly slots: number,
    /** The next record's sequence number. */
    private seq: number,
    private readonly report: JournalErrorReport,
  ) {}

  /** A fresh journal at `path` holding the records `hashes`/`ats` (numbered from 0): temp file, fdatasync, rename. */
  static create(
    fs: Filesystem,
    path: string,
    slots: number,
    hashes: Uint32Array,
    ats: Float64Array,
    report: JournalErrorReport,
  ): IdJournal {
    const tmp = `${path}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    const journal = new IdJournal(fs, fd, slots, 0, report);
    try {
      journal.write(hashes, ats, 0, ats.length);
      fs.fdatasyncSync(fd);
      fs.renameSync(tmp, path);
    } catch (err) {
      try {
        fs.closeSync(fd);
      } catch (closeErr) {
        report(
          'close',
          closeErr as NodeJS.ErrnoException,
          'The temporary acked chunk id journal could not be closed after its write failed; the open fails with the write error.',
        );
      }
      throw err;
    }
    return journal;
  }

  /**
   * Writes `count` records (hash `hashes[4i…4i+3]`, acked at `ats[i]`, or at
   * `at` for all when `ats` is null) as records `seq …` into their slots:
   * one positional write, two where the ring wraps. Records a longer batch
   * would overwrite itself are not written.
   */
  write(hashes: Uint32Array, ats: Float64Array | null, at: number, count: number): void {
    if (this.slots === 0 || count === 0) return;
    const skip = Math.max(0, count - this.slots);
    const n = count - skip;
    const start = this.seq + skip;
    if (this.out.length < n * SLOT_BYTES) this.grow(n);
    const { words, doubles, check } = this;
    for (let i = 0; i < n; i++) {
      const w = i * (SLOT_BYTES / 4);
      const r = (skip + i) * 4;
      words[w] = hashes[r];
      words[w + 1] = hashes[r + 1];
      words[w + 2] = hashes[r + 2];
      words[w + 3] = hashes[r + 3];
      doubles[i * (SLOT_BYTES / 8) + 2] = ats ? ats[skip + i] : at;
      doubles[i * (SLOT_BYTES / 8) + 3] = start + i;
      slotCheck(words, w, check);
      words[w + 8] = check[0];
      words[w + 9] = check[1];
    }
    const buf = this.out;
    const first = start % this.slots;
    const head = Math.min(n, this.slots - first);
    try {
      this.writeAt(buf.subarray(0, head * SLOT_BYTES), first * SLOT_BYTES);
      if (head < n) this.writeAt(buf.subarray(head * SLOT_BYTES, n * SLOT_BYTES), 0);
    } catch (err) {
      // Slots written whole before the failure hold ids that will not be acked: blank them, so a restart
      // cannot take them for acked (the next record writes the same slots again anyway).
      try {
        this.writeAt(Buffer.alloc(head * SLOT_BYTES), first * SLOT_BYTES);
        if (head < n) this.writeAt(Buffer.alloc((n - head) * SLOT_BYTES), 0);
      } catch (blankErr) {
        this.report(
          'journal',
          blankErr as NodeJS.ErrnoException,
          'The slots of a failed acked chunk id journal write could not be blanked; a restart before the next write may remember ids that were not acked.',
        );
      }
      throw err;
    }
    this.seq += count;
  }

  /** Room for `n` slots in the reused output buffer (doubling, so a steady batch size allocates once). */
  private grow(n: number): void {
    const bytes = new ArrayBuffer(Math.max(n, 2 * (this.out.length / SLOT_BYTES)) * SLOT_BYTES);
    this.out = Buffer.from(bytes);
    this.words = new Uint32Array(bytes);
    this.doubles = new Float64Array(bytes);
  }

  private writeAt(data: Buffer, position: number): void {
    writevAllSync(this.fs, this.fd, [data], data.length, position);
  }

  closeSync(): void {
    this.fs.closeSync(this.fd);
  }
}
