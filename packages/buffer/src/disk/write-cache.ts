/**
 * The entries of chunks made of a few large appends (PackedForward input),
 * kept in memory as written, within a byte budget for all chunks together,
 * so sending them needs no read back. Other chunks, chunks over the budget,
 * and every chunk recovered at start are read from their file.
 */
import { MAX_SEND_PARTS } from './chunk-file';

/** A payload whose backing store is larger than this (twice its length, plus this) is copied rather than kept as a view. */
const VIEW_SLACK_BYTES = 8192;

export class WriteCache {
  /** Entries by chunk key. */
  private readonly entries = new Map<string, Buffer[]>();
  private bytes = 0;

  constructor(
    /** Bytes kept at most, all chunks together; 0 keeps nothing. */
    private readonly budget: number,
    private readonly chunkLimitBytes: number,
  ) {}

  /**
   * Keeps a copy-free reference to a payload just written, while the budget
   * allows; `first` is the first payload of a new chunk. A `borrowed`
   * payload (its memory is reused once the append settled) is copied.
   */
  remember(key: string, first: boolean, payload: Buffer, borrowed = false): void {
    let list = this.entries.get(key);
    // Cached only when appends are large enough to fill the chunk in a few parts (see below).
    if (first && !list && this.budget > 0 && payload.length * MAX_SEND_PARTS >= this.chunkLimitBytes) {
      list = [];
      this.entries.set(key, list);
    }
    if (!list) return;
    // Only chunks that go out as they came in are kept: one of many small appends (Message mode) would need
    // a join before sending anyway, and its parts would outlive the young generation and wait for a full GC.
    if (list.length >= MAX_SEND_PARTS || this.bytes + payload.length > this.budget) {
      this.forget(key);
      return;
    }
    const kept = borrowed || payload.buffer.byteLength > 2 * payload.length + VIEW_SLACK_BYTES ? ownCopy(payload) : payload;
    list.push(kept);
    this.bytes += kept.length;
  }

  /** The chunk's entries when all of them are kept. */
  get(key: string): Buffer[] | undefined {
    return this.entries.get(key);
  }

  forget(key: string): void {
    const list = this.entries.get(key);
    if (!list) return;
    this.entries.delete(key);
    for (const b of list) this.bytes -= b.length;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/**
 * A copy of `payload` in memory of its own. A small view into a large socket read would keep the whole read
 * alive; `Buffer.from` would not do either: a copy under half of `Buffer.poolSize` (8 KiB on Node 20 and 22,
 * 64 KiB on Node 24) is a slice of the shared allocation pool, and a cached slice keeps its whole pool block
 * alive, with whatever else (socket reads, frames) was allocated in it.
 */
function ownCopy(payload: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(payload.length);
  payload.copy(copy);
  return copy;
}
