/**
 * The resend keys of the appends in progress, as the 128-bit hashes the
 * acked chunk ids use (`hashKey`), each with the number of the latest append
 * that carries it: open addressing (linear probing) over typed arrays, so an
 * append of N ids costs no object per id. A key is dropped once the append
 * that owns it settles; an append that took a key over from an earlier one
 * (the same id again) keeps it when the earlier one settles.
 */
import { PREFETCH_BLOCK } from './acked-chunk-ids';

const INITIAL_SLOTS = 1024;

export class InProgressIds {
  /** Four hash words per slot. */
  private words = new Uint32Array(INITIAL_SLOTS * 4);
  /** The owning append's number per slot; 0 = empty. */
  private owners = new Int32Array(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  private used = 0;

  /** Keys held. */
  get size(): number {
    return this.used;
  }

  /** The number of the append that carries the key `hashes[4 * at …]`, or 0. */
  ownerOf(hashes: Uint32Array, at: number): number {
    const pos = this.find(hashes, at * 4);
    return pos < 0 ? 0 : this.owners[pos];
  }

  /** Append `owner` (> 0) carries the key `hashes[4 * at …]`, taking it over from any earlier one. */
  set(hashes: Uint32Array, at: number, owner: number): void {
    const w = at * 4;
    const pos = this.find(hashes, w);
    if (pos >= 0) {
      this.owners[pos] = owner;
      return;
    }
    if ((this.used + 1) * 2 > this.owners.length) this.grow();
    let p = hashes[w] & this.mask;
    while (this.owners[p] !== 0) p = (p + 1) & this.mask;
    this.put(p, hashes, w, owner);
    this.used++;
  }

  /** Drops the key `hashes[4 * at …]` when append `owner` still carries it. */
  delete(hashes: Uint32Array, at: number, owner: number): void {
    const pos = this.find(hashes, at * 4);
    if (pos < 0 || this.owners[pos] !== owner) return;
    const { words, owners, mask } = this;
    this.used--;
    // Backward-shift deletion: an entry after the hole moves into it unless its home lies in (hole, p] (cyclically).
    let hole = pos;
    for (let p = (hole + 1) & mask; owners[p] !== 0; p = (p + 1) & mask) {
      const home = words[p * 4] & mask;
      if (hole <= p ? home <= hole || home > p : home <= hole && home > p) {
        this.put(hole, words, p * 4, owners[p]);
        hole = p;
      }
    }
    owners[hole] = 0;
  }

  /** `set` of the `n` keys `hashes[0 … 4n)`, read ahead a block at a time (`prefetch`). */
  setAll(hashes: Uint32Array, n: number, owner: number): void {
    for (let i = 0; i < n; i++) {
      if (i % PREFETCH_BLOCK === 0) this.prefetch(hashes, i, Math.min(n, i + PREFETCH_BLOCK));
      this.set(hashes, i, owner);
    }
  }

  /** `delete` of the `n` keys `hashes[0 … 4n)`, read ahead a block at a time (`prefetch`). */
  deleteAll(hashes: Uint32Array, n: number, owner: number): void {
    for (let i = 0; i < n; i++) {
      if (i % PREFETCH_BLOCK === 0) this.prefetch(hashes, i, Math.min(n, i + PREFETCH_BLOCK));
      this.delete(hashes, i, owner);
    }
  }

  /**
   * Reads, in one pass of independent loads, the slots that looking up the
   * keys `hashes[4 * from … 4 * to)` will probe first, so their cache misses
   * overlap instead of each lookup waiting on its own.
   */
  prefetch(hashes: Uint32Array, from: number, to: number): void {
    if (this.used === 0) return;
    const { words, owners, mask } = this;
    let sink = 0;
    for (let i = from; i < to; i++) {
      const p = hashes[i * 4] & mask;
      sink ^= owners[p] ^ words[p * 4];
    }
    this.sink = sink;
  }

  /** Where `prefetch` leaves what it read, so the reads are not optimized away. */
  private sink = 0;

  private find(hashes: Uint32Array, w: number): number {
    const { words, owners, mask } = this;
    const h0 = hashes[w];
    const h1 = hashes[w + 1];
    const h2 = hashes[w + 2];
    const h3 = hashes[w + 3];
    for (let p = h0 & mask; ; p = (p + 1) & mask) {
      if (owners[p] === 0) return -1;
      const s = p * 4;
      if (words[s] === h0 && words[s + 1] === h1 && words[s + 2] === h2 && words[s + 3] === h3) return p;
    }
  }

  private put(p: number, from: Uint32Array, w: number, owner: number): void {
    const s = p * 4;
    this.words[s] = from[w];
    this.words[s + 1] = from[w + 1];
    this.words[s + 2] = from[w + 2];
    this.words[s + 3] = from[w + 3];
    this.owners[p] = owner;
  }

  /** Doubles the table (load factor ≤ 0.5) and re-adds every key. */
  private grow(): void {
    const { words, owners } = this;
    this.words = new Uint32Array(words.length * 2);
    this.owners = new Int32Array(owners.length * 2);
    this.mask = this.owners.length - 1;
    for (let q = 0; q < owners.length; q++) {
      if (owners[q] === 0) continue;
      let p = words[q * 4] & this.mask;
      while (this.owners[p] !== 0) p = (p + 1) & this.mask;
      this.put(p, words, q * 4, owners[q]);
    }
  }
}
