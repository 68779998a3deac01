/**
 * The entries of chunks made of a few large appends (PackedForward input),
 * kept in memory as written, within a byte budget for all chunks together,
 * so sending them needs no read back. Other chunks, chunks over the budget,
 * and every chunk recovered at start are read from their file.
 *
 * Each kept chunk's entries are copied into a slab of its own, taken from a
 * free list and given back once the chunk is gone, so the memory they came
 * in (a socket read, a pooled request buffer, the join scratch) is the
 * caller's again at once. Keeping views of it instead held a fresh
 * ArrayBuffer per request until its chunk was delivered: V8 counts external
 * memory grown since the last full GC against the old generation's headroom,
 * and at 200 MB/s that garbage brought a full GC every ~35 ms.
 */
import { MAX_SEND_PARTS } from './chunk-file';

/** Free slabs kept for the next chunks, at most: about the output window's worth. */
const MAX_FREE_SLABS = 8;

interface Kept {
  slab: Buffer;
  length: number;
  /** Times read for sending: after a resend a dead connection may still refer to the slab, so it is not reused. */
  reads: number;
}

export class WriteCache {
  /** Entries by chunk key. */
  private readonly entries = new Map<string, Kept>();
  /** Bytes of the slabs lent to chunks. */
  private bytes = 0;
  private readonly free: Buffer[] = [];
  private readonly slabBytes: number;

  constructor(
    /** Bytes kept at most, all chunks together, counted in whole slabs; 0 keeps nothing. */
    private readonly budget: number,
    private readonly chunkLimitBytes: number,
  ) {
    // A sealed chunk holds less than twice the limit (the buffer seals it once it reached the limit, after a
    // hand-off of at most the limit per tag: registry.ts), so a slab holds any chunk whole.
    this.slabBytes = Math.min(budget, 2 * chunkLimitBytes);
  }

  /**
   * Copies a payload just written into its chunk's slab, while the budget
   * allows; `first` is the first payload of a new chunk. The payload's
   * memory is not referred to once this returns.
   */
  remember(key: string, first: boolean, payload: Buffer): void {
    let kept = this.entries.get(key);
    // Cached only when appends are large (PackedForward): a chunk of many small appends (Message mode) is read back
    // from its file on the thread pool, cheaper for the event loop than copying each append here.
    if (
      first &&
      !kept &&
      this.slabBytes > 0 &&
      this.bytes + this.slabBytes <= this.budget &&
      payload.length * MAX_SEND_PARTS >= this.chunkLimitBytes
    ) {
      kept = { slab: this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes), length: 0, reads: 0 };
      this.entries.set(key, kept);
      this.bytes += this.slabBytes;
    }
    if (!kept) return;
    if (kept.length + payload.length > kept.slab.length) {
      this.forget(key);
      return;
    }
    kept.length += payload.copy(kept.slab, kept.length);
  }

  /** The chunk's entries when all of them are kept (a view of its slab, valid until `forget`). */
  get(key: string): Buffer[] | undefined {
    const kept = this.entries.get(key);
    if (!kept) return undefined;
    kept.reads++;
    return [kept.slab.subarray(0, kept.length)];
  }

  /** The chunk is gone (delivered, dropped, or its append undone): its slab is free again. */
  forget(key: string): void {
    const kept = this.entries.get(key);
    if (!kept) return;
    this.entries.delete(key);
    this.bytes -= this.slabBytes;
    if (kept.reads <= 1 && this.free.length < MAX_FREE_SLABS) this.free.push(kept.slab);
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
    this.free.length = 0;
  }
}
