/**
 * Reads chunk files into pooled buffers. Chunks read back (Message-mode
 * input, backlogs) would otherwise allocate a fresh buffer of about
 * `chunkLimitBytes` per send, and that garbage, outside the V8 heap, waits for
 * a full GC: it was what pushed peak RSS around. A buffer is lent to its chunk
 * until the chunk is delivered, then returns to the pool.
 */
import type { Filesystem } from '@tributary/core';

/** Free read buffers kept: the output window's worth. */
const READ_POOL_SIZE = 8;

export class ReadPool {
  private readonly free: Buffer[] = [];
  /** Buffers lent to chunks being sent, by chunk key. */
  private readonly lent = new Map<string, Buffer>();
  private readonly capacity: number;

  constructor(
    private readonly fs: Filesystem,
    chunkLimitBytes: number,
  ) {
    // A sealed chunk's entries are less than twice the limit (registry.ts): a chunk file fits a pooled buffer
    // unless its record headers tip it over, and such a file is read into a buffer of its own.
    this.capacity = 2 * chunkLimitBytes;
  }

  /**
   * The whole file at `path` (`size` bytes as stored), in a pooled buffer lent
   * to `key` when it fits, else in a buffer of its own. The caller may
   * rearrange the bytes in place until it calls `release(key)`.
   */
  async read(key: string, path: string, size: number): Promise<Buffer> {
    if (size > this.capacity) return this.fs.readFile(path);
    const target = this.free.pop() ?? Buffer.allocUnsafeSlow(this.capacity);
    const fd = await this.fs.open(path, 'r');
    let got = 0;
    try {
      for (;;) {
        const bytesRead = await this.fs.read(fd, target, got, this.capacity - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (err) {
      this.free.push(target);
      throw err;
    } finally {
      await this.fs.close(fd);
    }
    // A resend after a failure reads again; the earlier loan may still be referenced by a dead socket: not pooled.
    this.lent.set(key, target);
    return target.subarray(0, got);
  }

  /** The chunk was delivered: its buffer returns to the pool. */
  release(key: string): void {
    const loan = this.lent.get(key);
    if (!loan) return;
    this.lent.delete(key);
    if (this.free.length < READ_POOL_SIZE) this.free.push(loan);
  }

  clear(): void {
    this.free.length = 0;
    this.lent.clear();
  }
}
