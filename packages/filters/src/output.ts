/**
 * A growing byte buffer the chain writes kept entries into: pieces are
 * copied, no view is made per piece.
 *
 * One Output may take several chunks' entries in turn (`begin` … `take`):
 * that is how the forwarder stages a hand-off's filtered chunks in one
 * reused buffer (OutputPool). Positions (`length`, `patch`) count from the
 * current chunk's start. When the buffer is full, the current chunk's bytes
 * move to a new, larger buffer; views taken of earlier chunks keep the old
 * one, which is never written again.
 *
 * Staging (`stage`): a chunk's source bytes are first copied, in one piece,
 * to the end of the buffer; the kept pieces are then moved from there with
 * copyWithin, which costs about a third of a Buffer#copy from another buffer
 * (that makes a view object per call). Writes never reach staged bytes
 * that may still be read (`readFrom`); one that would ends the staging, and
 * the rest is copied from the source itself.
 */
export class Output {
  private buf: Buffer;
  private pos = 0;
  /** Where the current chunk's bytes start. */
  private from = 0;
  /** The staged source (`src[srcStart, …)` is at `buf[stagedAt, …)`), or null. */
  private staged: Buffer | null = null;
  private srcStart = 0;
  private srcEnd = 0;
  private stagedAt = 0;
  /** Writes end at most here: the buffer's end, or while staging the first staged byte that may still be read. */
  private limit = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(256, capacity));
    this.limit = this.buf.length;
  }

  /** An Output writing into `buf` from its start (a pooled buffer: `take` returns views of it). */
  static over(buf: Buffer): Output {
    const out = new Output(0);
    out.buf = buf;
    out.limit = buf.length;
    return out;
  }

  /** The buffer written now (an OutputPool takes it back). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Starts the next chunk's bytes after what was taken so far. */
  begin(): void {
    this.unstage();
    this.from = this.pos;
  }

  /**
   * Copies `src[start, end)` (the current chunk's source, read forward from
   * `start`) to the end of the buffer, so `copy`s from it move bytes within
   * the buffer. Grows the buffer when it has less room than the source and
   * half as much again.
   */
  stage(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.buf.length - this.pos < n + (n >> 1)) this.grow(this.pos - this.from + 2 * n + (n >> 1));
    this.stagedAt = this.buf.length - n;
    src.copy(this.buf, this.stagedAt, start, end);
    this.staged = src;
    this.srcStart = start;
    this.srcEnd = end;
    this.limit = this.stagedAt;
  }

  /** The staged source before `srcPos` will not be read again: writes may reach it. */
  readFrom(srcPos: number): void {
    if (this.staged) this.limit = this.stagedAt + (srcPos - this.srcStart);
  }

  private unstage(): void {
    this.staged = null;
    this.limit = this.buf.length;
  }

  private room(n: number): void {
    if (this.pos + n <= this.limit) return;
    if (this.staged) {
      this.unstage(); // the output caught up with the staged source: copy the rest from the source itself
      if (this.pos + n <= this.limit) return;
    }
    this.grow(Math.max(this.buf.length * 2, this.pos - this.from + n));
  }

  /** Moves the current chunk's bytes to a new buffer of `size` bytes (not staging any more). */
  private grow(size: number): void {
    const used = this.pos - this.from;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, this.from, this.pos);
    this.buf = grown;
    this.from = 0;
    this.pos = used;
    this.unstage();
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
      return;
    }
    const at = this.stagedAt + (start - this.srcStart);
    if (src === this.staged && at >= this.limit && end <= this.srcEnd) {
      this.buf.copyWithin(this.pos, at, at + n);
      this.pos += n;
    } else this.pos += src.copy(this.buf, this.pos, start, end);
  }

  /** Bytes of the current chunk written so far. */
  get length(): number {
    return this.pos - this.from;
  }

  /**
   * Drops what the current chunk has past `length` (an earlier `length`):
   * an entry that failed half-way leaves nothing. Staged bytes stay as they
   * are: writes never reached those still to be read.
   */
  rewind(length: number): void {
    this.pos = this.from + length;
  }

  /** Overwrites one byte of the current chunk already written. */
  patch(at: number, byte: number): void {
    this.buf[this.from + at] = byte;
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

  /** The current chunk's bytes, as a view (valid while the buffer is not reused: see OutputPool). */
  view(): Buffer {
    return this.buf.subarray(this.from, this.pos);
  }
}

/**
 * Buffers for staging filtered chunks, reused: a hand-off's kept entries are
 * written into one, which goes back once the hand-off was stored (the
 * storage copied the bytes). A filtered chunk then costs no allocation,
 * which would otherwise double the bytes the process allocates per event
 * (and the garbage collections they bring).
 */
export class OutputPool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  /** At most `maxBytes` of free buffers are kept. */
  constructor(private readonly maxBytes: number) {}

  /**
   * An Output with room for a hand-off of `bytes`: its filtered entries and
   * a staged chunk (`stage` wants the source and half as much again free).
   * Give it back with `release` once no view of it is used any more.
   */
  acquire(bytes: number): Output {
    const need = Math.max(64 * 1024, 2 * bytes + (bytes >> 1));
    for (let i = this.free.length - 1; i >= 0; i--) {
      const b = this.free[i];
      if (b.length < need) continue;
      this.free.splice(i, 1);
      this.freeBytes -= b.length;
      return Output.over(b);
    }
    return Output.over(Buffer.allocUnsafeSlow(need));
  }

  /** Takes the Output's buffer back; every view taken of it must be unused from now on. */
  release(out: Output): void {
    const b = out.buffer;
    if (b.length + this.freeBytes > this.maxBytes) return;
    this.free.push(b);
    this.freeBytes += b.length;
  }
}
