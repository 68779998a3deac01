/**
 * Queueing, space accounting and the overflow policy, shared by the disk and
 * memory buffers, over a ChunkStorage that only keeps bytes (see
 * chunk-storage.ts). DiskBuffer and MemoryBuffer only choose the storage.
 */
import { RetryableError } from '@tributary/core';
import { AckedIdCursor, type AckedRun, type ForwardChunk, chunkIdCount, chunkIdOf, countChunkIds } from '@tributary/forward-protocol';
import { type AckedChunkIds, PREFETCH_BLOCK, hashKey, hashWords, packUnits } from './acked-chunk-ids';
import { BufferErrorCode, type BufferLimits, type BufferStats, type ChunkBuffer, type OpenChunk, type SealedChunk } from './chunk-buffer';
import type { ChunkStorage, StorageEvents } from './chunk-storage';
import { InProgressIds } from './in-progress-ids';

/**
 * What recognises a resend: the client's chunk id, with the tag, event count
 * and size of the chunk, so two clients that happen to use the same id for
 * different chunks are not taken for each other (the aggregators' dedupe key
 * adds a checksum; the forwarder leaves it out to keep the hot path cheap).
 * The buffer keeps it as its 128-bit hash (`hashKey`).
 *
 *   key = chunk-id "\n" tag "\n" count "\n" bytes        (count and bytes in decimal)
 */
export function resendKey(c: ForwardChunk): string {
  return `${c.chunkId}\n${c.tag}\n${c.count}\n${c.entries.length}`;
}

/** The cursor over a merged run's ids (`runKeyHashes`): one for every run, nothing allocated per id. */
const runIds = new AckedIdCursor();

/** Scratch for the key `runKeyHashes` hashes: its UTF-16 code units, two per 32-bit word (the first in the low half). */
class KeyScratch {
  words: Int32Array = new Int32Array(128);

  /** Room for `units` code units and the hash's pad. */
  reserve(units: number): void {
    if (2 * this.words.length < units + 2) this.words = new Int32Array(units + 2);
  }
}
const runKey = new KeyScratch();

/**
 * The part of a run event's key after its id, `"\n" tag "\n1\n"` (count 1),
 * as words for both places it can start at: an even unit (`even`), or an odd
 * one, where its first unit shares a word with the id's last (`odd`: the
 * units after that first one). Made once per tag in a row.
 */
class KeySuffix {
  tag: string | null = null;
  length = 0;
  first = 0;
  even: Int32Array = new Int32Array(0);
  odd: Int32Array = new Int32Array(0);

  of(tag: string): this {
    if (tag === this.tag) return this;
    const units = [0x0a];
    for (let k = 0; k < tag.length; k++) units.push(tag.charCodeAt(k));
    units.push(0x0a, 0x31, 0x0a);
    this.tag = tag;
    this.length = units.length;
    this.first = units[0];
    this.even = pairs(units);
    this.odd = pairs(units.slice(1));
    return this;
  }
}
const runSuffix = new KeySuffix();

/** Code units as words of two (the first in the low half; an odd last one alone). */
function pairs(units: number[]): Int32Array {
  const out = new Int32Array((units.length + 1) >> 1);
  for (let k = 0; k < units.length; k += 2) out[k >> 1] = units[k] | ((units[k + 1] ?? 0) << 16);
  return out;
}

/**
 * The resend-key hashes of a merged run's events (`ForwardChunk.ids`), into
 * `out[0 … 4n)`: each the key its event would have as a chunk of its own
 * (`resendKey` of `{ chunkId, tag, count: 1, entries of its size }`), so a
 * resend matches whether it comes merged or alone. The keys are hashed from
 * their code units, never made as strings: an ASCII id's units are its bytes
 * in the run's acks, put two to a word; another id's (non-ASCII str, bin)
 * come from its text.
 */
export function runKeyHashes(tag: string, ids: AckedRun, out: Uint32Array): void {
  const { acks, sizes } = ids;
  const suffix = runSuffix.of(tag);
  const id = runIds.over(acks);
  for (let i = 0; id.next(); i++) {
    const { start, end, str } = id;
    let n = str ? asciiIdKey(acks, start, end, suffix) : -1;
    if (n < 0) n = textIdKey(chunkIdOf(acks, start, end, str), suffix);
    hashWords(runKey.words, putDecimal(runKey, n, sizes[i]), out, i);
  }
}

/**
 * Writes the key of a str id (`acks[start, end)`) up to its size into
 * `runKey`, its bytes as its units; returns its length in units, or -1 when
 * the id is not ASCII (its units are then those of its UTF-8 text).
 */
function asciiIdKey(acks: Buffer, start: number, end: number, suffix: KeySuffix): number {
  const len = end - start;
  runKey.reserve(len + suffix.length + 11);
  const w = runKey.words;
  let j = 0;
  let k = start;
  let high = 0; // the bytes ORed: bit 7 set when one is not ASCII
  for (; k + 1 < end; k += 2) {
    const a = acks[k];
    const b = acks[k + 1];
    high |= a | b;
    w[j++] = a | (b << 16);
  }
  const rest = k < end ? suffix.odd : suffix.even;
  if (k < end) {
    high |= acks[k];
    w[j++] = acks[k] | (suffix.first << 16);
  }
  if (high & 0x80) return -1;
  for (let q = 0; q < rest.length; q++) w[j + q] = rest[q];
  return len + suffix.length;
}

/** Writes the key of an id given as text up to its size into `runKey`; returns its length in units. */
function textIdKey(text: string, suffix: KeySuffix): number {
  const n = text.length;
  runKey.reserve(n + suffix.length + 11);
  const w = runKey.words;
  packUnits(text, w);
  // an odd id's last unit shares its word with the suffix's first
  const j = (n + 1) >> 1;
  if (n & 1) w[j - 1] |= suffix.first << 16;
  const rest = n & 1 ? suffix.odd : suffix.even;
  for (let q = 0; q < rest.length; q++) w[j + q] = rest[q];
  return n + suffix.length;
}

/** Writes the decimal digits of `v` (a non-negative integer below 2^31) from unit `n` of `key` on; returns where they end. */
function putDecimal(key: KeyScratch, n: number, v: number): number {
  const w = key.words;
  let digits = 1;
  for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
  for (let k = n + digits - 1, x = v; k >= n; k--) {
    const q = (x / 10) | 0;
    const unit = 0x30 + x - q * 10;
    // into the word's high half for an odd unit, its low half for an even one, keeping the other half
    const j = k >> 1;
    w[j] = k & 1 ? (w[j] & 0xffff) | (unit << 16) : (w[j] & -0x10000) | unit;
    x = q;
  }
  return n + digits;
}

/** Scratch for `repeatsIn`: an open-addressing table of event index + 1 (0 = empty). */
let repeatTable = new Int32Array(64);

/**
 * Marks the events of a run whose key (`hashes[4i … 4i + 3]`) an earlier
 * event of the run has: a resend that arrived in the same read as its first
 * send (a client that timed out while the forwarder was not reading). Null
 * when no key repeats, the common case. One probe per event in a table sized
 * to the run.
 */
function repeatsIn(hashes: Uint32Array, n: number): Uint8Array | null {
  if (n < 2) return null;
  let size = 2;
  while (size < 2 * n) size *= 2;
  if (repeatTable.length < size) repeatTable = new Int32Array(size);
  const table = repeatTable;
  const mask = size - 1;
  let repeats: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const w = i * 4;
    for (let p = hashes[w] & mask; ; p = (p + 1) & mask) {
      const at = table[p];
      if (at === 0) {
        table[p] = i + 1;
        break;
      }
      const v = (at - 1) * 4;
      if (
        hashes[v] === hashes[w] &&
        hashes[v + 1] === hashes[w + 1] &&
        hashes[v + 2] === hashes[w + 2] &&
        hashes[v + 3] === hashes[w + 3]
      ) {
        repeats ??= new Uint8Array(n);
        repeats[i] = 1;
        break;
      }
    }
  }
  table.fill(0, 0, size);
  return repeats;
}

/** Resend-key hashes (`hashKey`), four words each, in the order added. */
class KeyHashes {
  words: Uint32Array;
  n = 0;

  /** Room for `capacity` hashes from the start (more grow it). */
  constructor(capacity: number) {
    this.words = new Uint32Array(Math.max(1, capacity) * 4);
  }

  /** Adds the hash `from[4 * at …]`. */
  add(from: Uint32Array, at: number): void {
    this.reserve(1);
    // Four words copied by index: a subarray view per chunk id was an allocation on every append.
    const w = this.words;
    const to = this.n * 4;
    const src = at * 4;
    w[to] = from[src];
    w[to + 1] = from[src + 1];
    w[to + 2] = from[src + 2];
    w[to + 3] = from[src + 3];
    this.n++;
  }

  /** True when the hash `h[4 * at …]` was added (a linear look: a batch holds few keys beside its merged runs'). */
  has(h: Uint32Array, at: number): boolean {
    const w = this.words;
    const a = at * 4;
    for (let i = 0; i < this.n * 4; i += 4) {
      if (w[i] === h[a] && w[i + 1] === h[a + 1] && w[i + 2] === h[a + 2] && w[i + 3] === h[a + 3]) return true;
    }
    return false;
  }

  /** Adds the `count` hashes of `from` from its hash `at` on (its start by default). */
  addAll(from: Uint32Array, count: number, at = 0): void {
    this.reserve(count);
    this.words.set(from.subarray(at * 4, (at + count) * 4), this.n * 4);
    this.n += count;
  }

  /** Room for `count` more. */
  reserve(count: number): void {
    if ((this.n + count) * 4 <= this.words.length) return;
    const words = new Uint32Array(Math.max(2 * this.words.length, (this.n + count) * 4));
    words.set(this.words.subarray(0, this.n * 4));
    this.words = words;
  }
}

/** A batch waiting for the group commit. */
interface QueuedAppend {
  chunks: ForwardChunk[];
  keys: KeyHashes;
  bytes: number;
  resolve(): void;
  reject(err: Error): void;
}

/** What the buffer knows of a merged run it checked: its keys' hashes, and whether none was acked or being appended then. */
interface RunCheck {
  hashes: Uint32Array;
  /** The buffer's count of id recordings when `skipAcked` found none of the run's ids acked, or -1. */
  checkedAt: number;
  /** The buffer's count of appends that carried ids when `skipAcked` found none of the run's ids in one in progress, or -1. */
  appendsAt: number;
  /** 1 at each event whose key an earlier event of the run has (a resend in the same read as its first send), or null when none has. */
  repeats: Uint8Array | null;
}

export class BaseBuffer implements ChunkBuffer {
  private readonly open = new Map<string, OpenChunk>();
  /** Sealed chunks in creation order (insertion order of the Map). */
  private readonly sealed = new Map<string, SealedChunk>();
  private readonly inFlight = new Set<string>();
  private totalBytes = 0;
  private droppedEvents = 0;
  private droppedChunks = 0;
  private readonly readyListeners: Array<() => void> = [];
  private spaceWaiters: Array<{ need: number; resolve(): void; reject(err: Error): void }> = [];
  /** Room `wakeWaiters` gave to woken batches that have not run yet: counted as taken until each takes it. */
  private grantedBytes = 0;
  private closed = false;
  /** The resend keys of the client chunks the appends in progress carry, by append number (`appends`). */
  private readonly appending = new InProgressIds();
  /** Appends in progress that carry client chunk ids, by number. */
  private readonly appends = new Map<number, Promise<void>>();
  private appendNumber = 0;
  /** Appends that carried ids (each registers its keys in `appending`), counted from the start: never wraps. */
  private appendsStarted = 0;
  /** Batches waiting for the group commit at the end of this turn of the event loop, and their bytes. */
  private queue: QueuedAppend[] = [];
  private queuedBytes = 0;
  /** Settles (never rejects) once the last group commit started, and every one before it, settled. */
  private lastCommit: Promise<void> = Promise.resolve();
  /** Group commits not settled yet (their outcome handled in `commitQueued`): `close` waits for them. */
  private readonly committing = new Set<Promise<void>>();
  /** Merged runs checked so far (`RunCheck`), while their chunks live. */
  private readonly runChecks = new WeakMap<AckedRun, RunCheck>();
  /** Scratch for one key's hash. */
  private readonly keyHash = new Uint32Array(4);
  /**
   * Set when storage can no longer be trusted (a failed fdatasync: the kernel
   * may have dropped the dirty pages, and a retried sync can falsely succeed):
   * every later append is refused until a restart reads back what the disk holds.
   */
  private failure: string | null = null;
  private writeProblem: string | null = null;
  /**
   * Calls to `recordIds` so far: the only way an id becomes acked. A merged run
   * checked at `skipAcked` with none of its ids acked needs no second look in
   * the acked ids at `append` while this has not moved (`RunCheck.checkedAt`).
   */
  private recordings = 0;

  private readonly storage: ChunkStorage;

  /**
   * `createStorage` is handed the events through which the storage reports
   * trouble; `recovered` are chunks the storage already holds (sealed, oldest
   * first), queued for sending.
   */
  protected constructor(
    private readonly limits: BufferLimits,
    private readonly ackedIds: AckedChunkIds,
    createStorage: (events: StorageEvents) => ChunkStorage,
    recovered: SealedChunk[] = [],
  ) {
    this.storage = createStorage({
      fail: (reason) => {
        this.failure ??= reason;
      },
      ioError: (op, err, what) => this.onIoError?.(op, err, what),
    });
    for (const c of recovered) {
      this.sealed.set(c.id.toString('hex'), c);
      this.totalBytes += c.stored;
    }
  }

  async skipAcked(chunks: ForwardChunk[]): Promise<ForwardChunk[]> {
    for (;;) {
      const { fresh, keys, running } = this.partition(chunks, true);
      if (running.length) {
        await Promise.all(running);
        continue;
      }
      // An input may hand a chunk over in pieces, its id on the last one: each chunk carries its whole key
      // (`resendHash`), which its last piece keeps, so that piece is remembered under the key a resend of the chunk has.
      let k = 0;
      for (const c of fresh) {
        if (c.ids) k += c.ids.sizes.length; // its keys are kept with its RunCheck
        if (c.chunkId === undefined) continue;
        c.resendHash = keys.words.slice(k * 4, k * 4 + 4);
        k++;
      }
      return fresh;
    }
  }

  async append(chunks: ForwardChunk[]): Promise<number> {
    this.refuseIfUnable();
    let { fresh, keys, running, ids } = this.partition(chunks);
    while (running.length) {
      await Promise.all(running);
      ({ fresh, keys, running, ids } = this.partition(chunks));
    }
    // Each id let through has its key in `keys` (a run whole, a chunk one): the others were stored before.
    const leftOut = ids - keys.n;
    if (!fresh.length) return leftOut;
    // Registered in the same turn as the partition above, so a resend arriving meanwhile waits for this append.
    const stored = this.store(fresh, keys);
    if (keys.n === 0) {
      await stored;
      return leftOut;
    }
    this.appendNumber = (this.appendNumber % 0x7fffffff) + 1;
    this.appendsStarted++;
    const owner = this.appendNumber;
    this.appends.set(owner, stored);
    this.appending.setAll(keys.words, keys.n, owner);
    try {
      await stored;
    } finally {
      this.appending.deleteAll(keys.words, keys.n, owner);
      this.appends.delete(owner);
    }
    return leftOut;
  }

  /** The append in progress that carries the key `hashes[4 * at …]`, if any. */
  private appendOf(hashes: Uint32Array, at: number): Promise<void> | undefined {
    if (this.appends.size === 0) return undefined;
    const owner = this.appending.ownerOf(hashes, at);
    return owner === 0 ? undefined : this.appends.get(owner);
  }

  /**
   * Splits chunks into those to store (with the resend-key hashes of those
   * that carry a client chunk id, a merged run's keys in order) and the
   * appends in progress that carry the ids of others. A merged run some of
   * whose ids were acked: at `skipAcked` (entries as read) it is split, its
   * other events kept as chunks of their own; at `append` (entries maybe
   * filtered or cut in pieces since) it is left out when every id was acked
   * and refused otherwise (a resend of the same ids raced it): the sender
   * resends, and `skipAcked` splits it then. `ids`: the client chunk ids
   * the chunks carry.
   */
  private partition(
    chunks: ForwardChunk[],
    canSplit = false,
  ): { fresh: ForwardChunk[]; keys: KeyHashes; running: Array<Promise<void>>; ids: number } {
    const fresh: ForwardChunk[] = [];
    const ids = countChunkIds(chunks);
    const keys = new KeyHashes(ids);
    const running: Array<Promise<void>> = [];
    // The whole chunks' ids so far: the first alone, a set from the second on (a batch of one chunk makes none).
    let firstId: string | undefined;
    let seenIds: Set<string> | null = null;
    for (const c of chunks) {
      if (c.ids) {
        this.partitionRun(c, c.ids, canSplit, fresh, keys, running);
        continue;
      }
      if (c.chunkId === undefined) {
        fresh.push(c);
        continue;
      }
      let key = c.resendHash;
      if (!key) {
        key = this.keyHash;
        hashKey(resendKey(c), key);
      }
      let repeated = false;
      if (firstId === undefined) firstId = c.chunkId;
      else {
        seenIds ??= new Set([firstId]);
        repeated = seenIds.has(c.chunkId);
        seenIds.add(c.chunkId);
      }
      const pending = this.appendOf(key, 0);
      if (pending) running.push(pending);
      // The same chunk twice in one batch (a resend in the same read as its first send) is stored once; the keys
      // added so far are looked at only for an id the batch had already.
      else if (!this.ackedIds.hasHash(key, 0) && !(repeated && keys.has(key, 0))) {
        fresh.push(c);
        keys.add(key, 0);
      }
    }
    return { fresh, keys, running, ids };
  }

  private partitionRun(
    c: ForwardChunk,
    ids: AckedRun,
    canSplit: boolean,
    fresh: ForwardChunk[],
    keys: KeyHashes,
    running: Array<Promise<void>>,
  ): void {
    const n = ids.sizes.length;
    let check = this.runChecks.get(ids);
    if (!check) {
      const hashes = new Uint32Array(n * 4);
      runKeyHashes(c.tag, ids, hashes);
      check = { hashes, checkedAt: -1, appendsAt: -1, repeats: repeatsIn(hashes, n) };
      this.runChecks.set(ids, check);
    }
    const hs = check.hashes;
    // Checked whole at skipAcked, and since then no id recorded and no append with ids started: none of its ids can
    // have become acked or be carried by an append in progress (those in progress then were waited for, or carried none).
    if (!canSplit && check.checkedAt === this.recordings && check.appendsAt === this.appendsStarted) {
      fresh.push(c);
      keys.addAll(hs, n);
      return;
    }
    let acked: Uint8Array | null = null;
    let ackedCount = 0;
    // Checked whole at skipAcked, and no id recorded since: none of its ids can have become acked.
    const unchanged = !canSplit && check.checkedAt === this.recordings;
    const now = Date.now();
    // At skipAcked an event whose key came earlier in the run is left out like an acked one: its first send is stored.
    const repeats = canSplit ? check.repeats : null;
    for (let i = 0; i < n; i++) {
      if (i % PREFETCH_BLOCK === 0) {
        const to = Math.min(n, i + PREFETCH_BLOCK);
        if (this.appends.size) this.appending.prefetch(hs, i, to);
        if (!unchanged) this.ackedIds.prefetch(hs, i, to);
      }
      const pending = this.appendOf(hs, i);
      if (pending) {
        running.push(pending);
        return;
      }
      if ((repeats !== null && repeats[i] === 1) || (!unchanged && this.ackedIds.hasHash(hs, i, now))) {
        acked ??= new Uint8Array(n);
        acked[i] = 1;
        ackedCount++;
      }
    }
    if (acked === null) {
      if (canSplit) {
        check.checkedAt = this.recordings;
        check.appendsAt = this.appendsStarted;
      }
      fresh.push(c);
      keys.addAll(hs, n);
      return;
    }
    if (ackedCount === n) return;
    if (!canSplit) {
      throw new RetryableError(
        BufferErrorCode.Resent,
        `${ackedCount} of the ${n} acked messages of a batch were stored meanwhile by a resend; the batch is refused and its sender resends it.`,
      );
    }
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const size = ids.sizes[i];
      if (!acked[i]) {
        fresh.push({ tag: c.tag, entries: c.entries.subarray(pos, pos + size), count: 1, mode: c.mode, chunkId: ids.chunkIds[i] });
        keys.add(hs, i);
      }
      pos += size;
    }
  }

  /**
   * Queues a batch and its client chunk ids for the next group commit
   * (`commit`), once the buffer has room for it; resolves once the group is
   * as safe as the storage promises before an ack.
   */
  private async store(chunks: ForwardChunk[], keys: KeyHashes): Promise<void> {
    this.refuseIfUnable();
    const bytes = chunks.reduce((n, c) => n + c.entries.length, 0);
    if (bytes > this.limits.maxBytes) {
      throw new RetryableError(
        BufferErrorCode.Full,
        `A batch of ${bytes} bytes is larger than the whole buffer (max_bytes ${this.limits.maxBytes}).`,
      );
    }
    // Batches queued for the group commit count as stored, and room given to woken batches as taken: together they
    // stay within max_bytes, and a batch arriving meanwhile cannot take a woken batch's room.
    // A batch arriving while others wait for space queues behind them, even when it would fit: a stream of small
    // batches would otherwise take every room that frees and hold a larger waiting batch back for good.
    let waited = false;
    while (
      this.totalBytes + this.queuedBytes + this.grantedBytes + bytes > this.limits.maxBytes ||
      (!waited && this.spaceWaiters.length > 0)
    ) {
      if (this.limits.overflow === 'drop_oldest') this.dropOldest(this.queuedBytes + this.grantedBytes + bytes);
      if (
        this.totalBytes + this.queuedBytes + this.grantedBytes + bytes <= this.limits.maxBytes &&
        (waited || this.spaceWaiters.length === 0)
      )
        break;
      // Woken with room given to this batch (`wakeWaiters`), which it takes back here and checks again; a batch that
      // must wait again all the same keeps its place at the head of the waiters.
      await this.waitForSpace(bytes, waited);
      this.grantedBytes -= bytes;
      waited = true;
      this.refuseIfUnable();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ chunks, keys, bytes, resolve, reject });
      this.queuedBytes += bytes;
      if (this.queue.length === 1) setImmediate(() => this.commitQueued());
    });
  }

  /** Commits the batches queued since the last group commit, settling each with the group's outcome. */
  private commitQueued(): void {
    const group = this.queue;
    if (!group.length) return;
    this.queue = [];
    this.queuedBytes = 0;
    // Once the group settled its bytes are stored or gone (a failed group's): batches waiting for space may fit.
    const done = this.commit(group, this.lastCommit).then(
      () => {
        for (const a of group) a.resolve();
        this.wakeWaiters();
      },
      (err: Error) => {
        for (const a of group) a.reject(err);
        this.wakeWaiters();
      },
    );
    // The next group waits for this one and, through it, for every earlier one: a group refused at once (its
    // write failed) must not let a later group be acked while an earlier group's fdatasync still runs.
    const earlier = this.lastCommit;
    this.lastCommit = done.then(() => earlier);
    this.committing.add(done);
    const settled = () => this.committing.delete(done);
    done.then(settled, settled);
  }

  /**
   * Group commit: writes the batches queued in one turn of the event loop
   * (every connection's reads of that turn) and their client chunk ids, all
   * or nothing: one write per open chunk and one journal write for the group
   * instead of one each per batch. When a write fails, the writes already
   * made for the group are cut off again, so no event that was not acked
   * stays in a chunk and nothing half-written is left for a later append to
   * build on; every batch of the group is refused. As with one batch at a
   * time, a chunk that reached `chunkLimitBytes` after a batch takes no more
   * (the next batch's events of its tag start a new chunk).
   *
   * A group resolves only once every earlier group settled (`earlier`), and
   * is refused when the buffer failed meanwhile: its records may sit behind
   * an earlier group's in the same chunk file, whose failed fdatasync may
   * have lost them, and a restart's recovery stops at the first torn record.
   */
  private async commit(group: QueuedAppend[], earlier: Promise<void>): Promise<void> {
    this.refuseIfUnable();
    const now = Date.now();
    const writes: Array<{
      chunk: OpenChunk;
      parts: ForwardChunk[];
      isNew: boolean;
      written: number;
      bytes: number;
      ids: KeyHashes | null;
    }> = [];
    // The write each tag's events go to now; a tag whose chunk reached the limit in this group goes on in a new chunk.
    const current = new Map<string, (typeof writes)[number]>();
    const cut = new Set<string>();
    let ids = 0;
    for (const a of group) ids += a.keys.n;
    const keys = new KeyHashes(ids);
    for (const a of group) {
      keys.addAll(a.keys.words, a.keys.n);
      // The append's keys are its chunks', in order (`partition`); each write carries its parts' keys beside their
      // entries. Were they ever out of step, the append's ids go to the journal only (a crash may then store a resend twice).
      let k = this.ackedIds.remembers && countChunkIds(a.chunks) === a.keys.n ? 0 : -1;
      // A chunk with no entries (its events all dropped by the forwarder's filters) is not written; its client chunk id is recorded all the same.
      for (const c of a.chunks) {
        const nk = k < 0 ? 0 : chunkIdCount(c);
        const from = k;
        if (k >= 0) k += nk;
        if (!c.entries.length) continue;
        let w = current.get(c.tag);
        if (!w) {
          const open = cut.has(c.tag) ? undefined : this.open.get(c.tag);
          w = {
            chunk: open ?? { id: this.storage.newId(), tag: c.tag, count: 0, bytes: 0, stored: 0, createdAt: now },
            parts: [],
            isNew: !open,
            written: 0,
            bytes: open ? open.bytes : 0,
            ids: null,
          };
          current.set(c.tag, w);
          writes.push(w);
        }
        w.parts.push(c);
        w.bytes += c.entries.length;
        if (nk > 0) {
          w.ids ??= new KeyHashes(nk);
          w.ids.addAll(a.keys.words, nk, from);
        }
      }
      if (current.size === 0) continue;
      for (const [tag, w] of current) {
        if (w.bytes < this.limits.chunkLimitBytes) continue;
        current.delete(tag);
        cut.add(tag);
      }
    }
    try {
      for (const w of writes)
        w.written = this.storage.write(w.chunk, w.parts, w.isNew, w.ids && { hashes: w.ids.words, n: w.ids.n, at: now });
      if (!this.storage.idsAfterSync && keys.n) {
        this.recordings++;
        this.storage.recordIds(keys.words, keys.n, now);
      }
    } catch (err) {
      for (const w of writes.reverse()) {
        // A chunk whose failed write could not be cut off takes no more appends: sealed as it was before.
        if (!this.storage.undo(w.chunk, w.isNew) && !w.isNew && w.chunk.count > 0) this.seal(w.chunk);
      }
      this.writeProblem = (err as Error).message;
      throw err instanceof RetryableError
        ? err
        : new RetryableError(BufferErrorCode.Io, `Writing to the buffer failed: ${(err as Error).message}.`, err);
    }
    // After the try: the group is written and its ids recorded, so nothing past this point may undo it.
    this.storage.settleWrites();
    this.writeProblem = null;
    for (const { chunk, parts, isNew, written } of writes) {
      if (isNew) this.open.set(chunk.tag, chunk);
      chunk.stored += written;
      this.totalBytes += written;
      for (const p of parts) {
        chunk.count += p.count;
        chunk.bytes += p.entries.length;
      }
      if (chunk.bytes >= this.limits.chunkLimitBytes) this.seal(chunk);
    }
    await this.syncForAck();
    // Ids are recorded (idsAfterSync) only once the groups before this one are safe too.
    await earlier;
    this.refuseIfFailed();
    if (!this.storage.idsAfterSync || !keys.n) return;
    try {
      this.recordings++;
      this.storage.recordIds(keys.words, keys.n, Date.now());
    } catch (err) {
      // The events are stored and synced but not acked: the client's resend stores them again (at-least-once).
      this.writeProblem = (err as Error).message;
      throw new RetryableError(BufferErrorCode.Io, `Recording the acked chunk ids failed: ${(err as Error).message}.`, err);
    }
    await this.syncForAck();
    this.refuseIfFailed();
  }

  /** `storage.sync()`, a failure as a RetryableError (the storage has reported it and failed the buffer: `StorageEvents.fail`). */
  private async syncForAck(): Promise<void> {
    try {
      await this.storage.sync();
    } catch (err) {
      this.writeProblem = (err as Error).message;
      throw err instanceof RetryableError
        ? err
        : new RetryableError(BufferErrorCode.Io, `Syncing the buffer failed: ${(err as Error).message}.`, err);
    }
  }

  /** Throws when appends are refused: closed, or storage that can no longer be trusted. */
  private refuseIfUnable(): void {
    if (this.closed) throw new RetryableError(BufferErrorCode.Closed, 'The buffer is closed; the events were not accepted.');
    this.refuseIfFailed();
  }

  /** Throws when storage can no longer be trusted; a group already written when the buffer closes still completes. */
  private refuseIfFailed(): void {
    if (this.failure) throw new RetryableError(BufferErrorCode.Broken, `The buffer takes no events: ${this.failure}.`);
  }

  /** Why appends are refused or failing now, or null: for /readyz. */
  problem(): string | null {
    if (this.failure) return `buffer: ${this.failure}`;
    return this.writeProblem ? `buffer: the last write failed (${this.writeProblem.replace(/\.$/, '')})` : null;
  }

  isFull(): boolean {
    return this.limits.overflow === 'block' && this.totalBytes >= this.limits.maxBytes;
  }

  take(now = Date.now()): SealedChunk | null {
    for (const [key, chunk] of this.sealed) {
      if (this.inFlight.has(key) || chunk.notBefore > now) continue;
      this.inFlight.add(key);
      chunk.attempts++;
      return chunk;
    }
    return null;
  }

  read(chunk: SealedChunk): Promise<Buffer[]> {
    return this.storage.read(chunk);
  }

  async ack(chunk: SealedChunk): Promise<void> {
    const key = chunk.id.toString('hex');
    this.inFlight.delete(key);
    if (!this.sealed.delete(key)) return;
    await this.storage.remove(chunk);
    this.freed(chunk);
  }

  release(chunk: SealedChunk, notBefore: number): void {
    chunk.notBefore = notBefore;
    this.inFlight.delete(chunk.id.toString('hex'));
  }

  sealDue(now: number, force = false): number {
    let n = 0;
    for (const open of [...this.open.values()]) {
      if (force || now - open.createdAt >= this.limits.flushIntervalMs) {
        this.seal(open);
        n++;
      }
    }
    return n;
  }

  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  stats(): BufferStats {
    let events = 0;
    let oldest: number | null = null;
    for (const c of [...this.open.values(), ...this.sealed.values()]) {
      events += c.count;
      if (oldest === null || c.createdAt < oldest) oldest = c.createdAt;
    }
    return {
      bytes: this.totalBytes,
      chunks: this.open.size + this.sealed.size,
      events,
      oldestCreatedAt: oldest,
      droppedEvents: this.droppedEvents,
      droppedChunks: this.droppedChunks,
    };
  }

  async close(): Promise<void> {
    this.commitQueued(); // what is queued is written as any append in progress is
    this.sealDue(Date.now(), true);
    this.closed = true;
    for (const w of this.spaceWaiters) w.reject(new RetryableError(BufferErrorCode.Closed, 'The buffer closed while waiting for space.'));
    this.spaceWaiters = [];
    // Groups written but not yet synced (or their ids not yet recorded) finish before the files and the id journal close.
    await Promise.allSettled([...this.committing]);
    // A failed sync here was reported and has stopped appends (StorageEvents.fail); what is on disk stays for the next start.
    await this.storage.sync().catch(() => undefined);
    await this.storage.close();
  }

  private seal(open: OpenChunk): void {
    this.open.delete(open.tag);
    this.storage.seal(open);
    this.sealed.set(open.id.toString('hex'), { ...open, attempts: 0, notBefore: 0 });
    for (const l of this.readyListeners) l();
  }

  private freed(chunk: SealedChunk): void {
    this.totalBytes -= chunk.stored;
    this.wakeWaiters();
  }

  /**
   * Wakes the batches waiting for space, oldest first, while the stored and
   * queued bytes and the room already given to woken batches leave room for
   * them (as `store` counts); the first that does not fit stops it, so no
   * later batch passes it. Each woken batch's room counts as taken
   * (`grantedBytes`) until it runs and checks again.
   */
  private wakeWaiters(): void {
    while (this.spaceWaiters.length) {
      const w = this.spaceWaiters[0];
      if (this.totalBytes + this.queuedBytes + this.grantedBytes + w.need > this.limits.maxBytes) return;
      this.spaceWaiters.shift();
      this.grantedBytes += w.need;
      w.resolve();
    }
  }

  /** Waits for `wakeWaiters`: at the end of the line, or at its head for a batch that was woken and must wait again. */
  private waitForSpace(need: number, atHead: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = { need, resolve, reject };
      if (atHead) this.spaceWaiters.unshift(w);
      else this.spaceWaiters.push(w);
    });
  }

  private dropOldest(need: number): void {
    for (const [key, chunk] of [...this.sealed]) {
      if (this.totalBytes + need <= this.limits.maxBytes) return;
      if (this.inFlight.has(key)) continue;
      this.sealed.delete(key);
      this.storage.removeNow(chunk);
      this.droppedEvents += chunk.count;
      this.droppedChunks++;
      this.onDrop?.(chunk);
      this.freed(chunk);
    }
  }

  /** Observer for drop_oldest, so the owner can log and count. */
  onDrop?: (chunk: SealedChunk) => void;

  /**
   * Observer for every storage error, whether it refused an append or was
   * handled (a file left for the next start to clean up), so the owner can
   * log and count: `op` is the storage step, `what` a sentence on its effect.
   */
  onIoError?: (op: string, err: Error, what: string) => void;
}
