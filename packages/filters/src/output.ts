/** A growing byte buffer the chain writes kept entries into: pieces are copied, no view is made per piece. */
export class Output {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(256, capacity));
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Appends `src[start, end)`. */
  copy(src: Buffer, start: number, end: number): void {
    const n = end - start;
    this.room(n);
    if (n <= 24) {
      // a few bytes (a time, a header): a loop beats Buffer#copy's argument checks
      const b = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) b[p++] = src[i];
      this.pos = p;
    } else this.pos += src.copy(this.buf, this.pos, start, end);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** Overwrites one byte already written. */
  patch(at: number, byte: number): void {
    this.buf[at] = byte;
  }

  bytes(b: Buffer): void {
    this.copy(b, 0, b.length);
  }

  /** A msgpack map header for `n` pairs. */
  mapHeader(n: number): void {
    this.room(5);
    const b = this.buf;
    if (n < 16) b[this.pos++] = 0x80 | n;
    else if (n < 0x10000) {
      b[this.pos] = 0xde;
      b.writeUInt16BE(n, this.pos + 1);
      this.pos += 3;
    } else {
      b[this.pos] = 0xdf;
      b.writeUInt32BE(n, this.pos + 1);
      this.pos += 5;
    }
  }

  /** What was written, in a buffer of its own size when most of the allocation went unused. */
  take(): Buffer {
    const used = this.buf.subarray(0, this.pos);
    return this.pos < this.buf.length / 2 ? Buffer.from(used) : used;
  }
}
