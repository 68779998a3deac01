/**
 * Reusable buffers for frames the decoder assembles across socket reads.
 *
 * A PackedForward request is usually larger than one socket read (64 KiB),
 * so its bytes are copied into one buffer of their own; at the aggregator
 * that was a fresh ArrayBuffer per request, half of the main thread's
 * external allocation and a young-generation GC ("external memory pressure")
 * every few dozen milliseconds, whose promotions drove ~10 full GCs a second.
 *
 * Buffers come in power-of-two sizes from MIN_BYTES on; a buffer given back
 * is kept for the next request of its size while the free ones hold at most
 * `maxFreeBytes`. Only memory nothing else refers to may be given back.
 */
const MIN_BYTES = 64 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  constructor(private readonly maxFreeBytes: number) {}

  /** Bytes held by buffers waiting to be reused. */
  get heldBytes(): number {
    return this.freeBytes;
  }

  /** A buffer of at least `size` bytes (its contents are arbitrary). */
  take(size: number): Buffer {
    const bytes = sizeClass(size);
    const list = this.free.get(bytes);
    const b = list?.pop();
    if (b) {
      this.freeBytes -= bytes;
      return b;
    }
    return Buffer.allocUnsafeSlow(bytes);
  }

  /** Gives back a buffer `take` returned, once nothing refers to its memory any more. */
  give(b: Buffer): void {
    const bytes = b.length;
    if (bytes !== sizeClass(bytes) || b.byteOffset !== 0 || b.buffer.byteLength !== bytes) return; // not one of ours
    if (this.freeBytes + bytes > this.maxFreeBytes) return;
    let list = this.free.get(bytes);
    if (!list) {
      list = [];
      this.free.set(bytes, list);
    }
    list.push(b);
    this.freeBytes += bytes;
  }
}

function sizeClass(size: number): number {
  let bytes = MIN_BYTES;
  while (bytes < size) bytes *= 2;
  return bytes;
}
