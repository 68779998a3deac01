/**
 * Streaming framer for a Forward connection: msgpack values back to back with
 * no length prefix. Handles a value split across reads and many values in one
 * read, drops `nil` keep-alives, and switches to JSON framing when the
 * connection's first byte is `[` or `{` (Fluentd's in_forward does the same).
 *
 * Memory is bounded by `maxFrameBytes`: an incomplete value larger than that
 * is an error (TRB_FWD_FRAME_TOO_LARGE) before any more is buffered.
 */
import type { BufferPool } from './buffer-pool';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { type JsonScan, findJsonEnd } from './json-request';
import { INCOMPLETE, type ScanState, newScanState, skipValue } from './msgpack-scan';

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type WireFormat = 'unknown' | 'msgpack' | 'json';

export class FrameDecoder {
  format: WireFormat = 'unknown';
  /**
   * Set when bad bytes followed complete frames in the same push: those frames
   * are returned, the stream is dead, and every later push throws this.
   */
  error: Error | null = null;
  /**
   * The incomplete frame, from its first byte: `acc[0, accLen)` followed by
   * the reads in `later`. Reads are only queued (no copy) while fewer bytes
   * than the scan needs have arrived; once enough have, they are copied into
   * `acc` in one go, which grows at least by doubling (each byte copied a
   * constant number of times, however weak the scan's hint). Sizes are never
   * taken from the size a frame declares, and a queued read is a view only
   * when it fills at least half its memory, so a sender that declares 16 MB
   * and stalls holds only about twice what it sent.
   */
  private acc: Buffer | null = null;
  private accLen = 0;
  /** This push's accumulator, when it came from the pool (a candidate for `handedOutBuffer`). */
  private pooledAcc: Buffer | null = null;
  private later: Buffer[] = [];
  private laterLen = 0;
  /** Bytes `acc` must hold before scanning again (a lower bound from the scan). */
  private need = 0;
  /**
   * This decoder's MessagePack scan: between reads, where the scan of the
   * incomplete frame stopped (`pos` relative to the frame's first byte) and
   * the containers in its bytes scanned so far.
   */
  private readonly scan: ScanState = newScanState();
  /**
   * MessagePack only: for each frame of the last `pushRanges`, how many maps
   * and arrays it holds (an upper bound on their nesting depth).
   */
  readonly frameContainers: number[] = [];
  /**
   * MessagePack only: for each frame of the last `pushRanges`, where the
   * third element of a four-element array (`[tag, time, record, option]`:
   * fluent-logger's acked message) ends, or -1 (another frame, or one whose
   * scan spanned reads). The scan stops there once on its way, so the
   * coalescer finds the option without walking the record again.
   */
  readonly frameThirdEnds: number[] = [];
  private readonly json: JsonScan = { pos: 0, depth: 0, inString: false };
  /**
   * With a pool: the accumulator the last push handed out whole (its frames
   * are the caller's and the decoder kept no view of it), or null. The caller
   * may give it back to the pool once nothing refers to those frames.
   */
  handedOutBuffer: Buffer | null = null;
  /**
   * The work done so far, in bytes: how far the scans stepped and how many
   * bytes were copied to assemble frames across reads. Linear framing keeps
   * both a small multiple of the bytes pushed, however they are split.
   */
  readonly work = { scannedBytes: 0, copiedBytes: 0 };

  /** With `pool`, the buffers that assemble frames across reads come from it (see `handedOutBuffer`). */
  constructor(
    private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
    private readonly pool: BufferPool | null = null,
  ) {}

  /** Bytes received of a frame not complete yet (the buffer holding them is at most about twice that). */
  get bufferedBytes(): number {
    return this.accLen + this.laterLen;
  }

  /**
   * Appends `data` and returns the complete frames it finishes. Frames are
   * views into the read buffers (no copy); the decoder never reuses them.
   * Throws on bad bytes or an oversized frame, unless complete frames came
   * first: then it returns those and sets `error`.
   */
  push(data: Buffer): Buffer[] {
    const { buf, ranges } = this.pushRanges(data);
    const frames: Buffer[] = [];
    for (let i = 0; i < ranges.length; i += 2) frames.push(buf.subarray(ranges[i], ranges[i + 1]));
    return frames;
  }

  /**
   * `push` without a view per frame: the complete frames are
   * `buf[ranges[2i], ranges[2i + 1])`. The caller owns those bytes (it may
   * rewrite them in place); the bytes after the last range are the decoder's.
   * Linear in the bytes received however they are split: each byte is
   * scanned once and copied a bounded number of times.
   */
  pushRanges(data: Buffer): { buf: Buffer; ranges: number[] } {
    if (this.error) throw this.error;
    this.frameContainers.length = 0;
    this.frameThirdEnds.length = 0;
    this.handedOutBuffer = null;
    if (data.length === 0) return { buf: data, ranges: [] };
    if (this.format === 'unknown') {
      const first = data[0];
      this.format = first === 0x5b || first === 0x7b ? 'json' : 'msgpack';
    }
    let buf: Buffer;
    let end: number;
    let resuming = false;
    this.pooledAcc = null;
    if (this.acc || this.laterLen > 0) {
      if (this.accLen + this.laterLen + data.length < this.need) {
        this.checkLimit(this.need);
        this.later.push(this.held(data));
        this.laterLen += data.length;
        return { buf: data, ranges: [] };
      }
      this.gather(data);
      buf = this.acc as Buffer;
      if (this.pool) this.pooledAcc = buf;
      end = this.accLen;
      resuming = true;
    } else {
      buf = data;
      end = data.length;
    }
    const frames: number[] = [];
    let pos = 0;
    while (pos < end) {
      let next: number;
      if (this.format === 'json') {
        if (!resuming) {
          const c = buf[pos];
          if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            pos++;
            continue;
          }
          this.json.pos = pos;
          this.json.depth = 0;
          this.json.inString = false;
        } else {
          this.json.pos += pos; // the saved scan is relative to the frame's first byte, here at `pos` (0)
        }
        const from = this.json.pos;
        next = findJsonEnd(buf, pos, end, this.json);
        this.work.scannedBytes += (next < 0 ? this.json.pos : next) - from;
        if (next < 0) {
          this.json.pos -= pos;
          this.need = this.json.pos + 1;
        }
      } else {
        const scan = this.scan;
        // a resumed scan starts where the last one stopped, with the values it still owed
        const from = resuming ? pos + scan.pos : pos;
        let thirdEnd = -1;
        try {
          if (resuming) next = skipValue(buf, from, end, scan.remaining, scan);
          else {
            scan.containers = 0;
            if (buf[pos] === 0x94) {
              // The same scan in two steps: the array's header and first three elements, then the fourth.
              scan.containers = 1;
              next = skipValue(buf, pos + 1, end, 3, scan);
              if (next !== INCOMPLETE) {
                thirdEnd = next;
                next = skipValue(buf, next, end, 1, scan);
              } else scan.remaining++; // the fourth element is still owed when the scan resumes
            } else next = skipValue(buf, pos, end, 1, scan);
          }
        } catch (err) {
          return this.failAfter(frames, buf, end, err as Error);
        }
        this.work.scannedBytes += (next === INCOMPLETE ? scan.pos : next) - from;
        // a container header cut short is not counted (skipValue counts a header once whole), so a resumed scan counts it once
        if (next === INCOMPLETE) {
          this.need = scan.need - pos;
          scan.pos -= pos;
        } else if (!(next - pos === 1 && buf[pos] === 0xc0)) {
          this.frameContainers.push(scan.containers);
          this.frameThirdEnds.push(thirdEnd);
        }
      }
      resuming = false;
      if (next === INCOMPLETE) {
        let tooLarge = this.limitError(this.need);
        if (!tooLarge) {
          this.keep(buf, pos, end, frames.length > 0);
          tooLarge = this.limitError(this.bufferedBytes);
        }
        if (tooLarge) return this.failAfter(frames, buf, end, tooLarge);
        return { buf: frames.length ? this.handedOut(buf, end) : data, ranges: frames };
      }
      if (next - pos > this.maxFrameBytes) {
        const tooLarge = this.limitError(next - pos);
        if (tooLarge) return this.failAfter(frames, buf, end, tooLarge);
      }
      if (!(next - pos === 1 && buf[pos] === 0xc0)) frames.push(pos, next);
      pos = next;
    }
    this.release();
    return { buf: frames.length ? this.handedOut(buf, end) : data, ranges: frames };
  }

  /**
   * The stream is dead at `err`: thrown when no frame came before it in this
   * push, else those frames are returned and every later push throws it.
   */
  private failAfter(frames: number[], buf: Buffer, end: number, err: Error): { buf: Buffer; ranges: number[] } {
    if (frames.length === 0) throw err;
    this.error = err;
    this.release();
    return { buf: this.handedOut(buf, end), ranges: frames };
  }

  /**
   * What the caller gets: the accumulated bytes (not the spare capacity), or
   * the read itself. A pooled accumulator the decoder keeps no view of goes
   * to the caller whole (`handedOutBuffer`).
   */
  private handedOut(buf: Buffer, end: number): Buffer {
    if (this.pool && buf === this.pooledAcc && this.acc !== buf && !this.later.some((b) => b.buffer === buf.buffer)) {
      this.handedOutBuffer = buf;
      this.pooledAcc = null;
    }
    return buf === this.acc || end !== buf.length ? buf.subarray(0, end) : buf;
  }

  /** Keeps `buf[pos, end)`, the start of an incomplete frame. */
  private keep(buf: Buffer, pos: number, end: number, handedOut: boolean): void {
    if (buf === this.acc && pos === 0 && !handedOut) return; // still ours, already in place
    const rest = buf.subarray(pos, end);
    this.acc = null;
    this.accLen = 0;
    this.later = [this.held(rest)];
    this.laterLen = rest.length;
  }

  /** `bytes` itself when it fills at least half the memory it keeps alive, else a copy (a small tail of a large read). */
  private held(bytes: Buffer): Buffer {
    if (bytes.length * 2 >= bytes.buffer.byteLength) return bytes;
    this.work.copiedBytes += bytes.length;
    return Buffer.from(bytes);
  }

  /** No incomplete frame left: drop the accumulator (handed out with the frames, or empty). */
  private release(): void {
    this.acc = null;
    this.accLen = 0;
    this.later = [];
    this.laterLen = 0;
    this.need = 0;
    this.scan.pos = 0;
    this.scan.remaining = 1;
    this.scan.containers = 0;
  }

  /** Copies the queued reads and `data` behind `acc[0, accLen)`, growing it (at least doubling) when they do not fit. */
  private gather(data: Buffer): void {
    const len = this.accLen + this.laterLen + data.length;
    let acc = this.acc;
    if (!acc || len > acc.length) {
      const size = acc ? Math.max(len, acc.length * 2) : len;
      const grown = this.pool ? this.pool.take(size) : Buffer.allocUnsafe(size);
      if (acc) {
        this.work.copiedBytes += this.accLen;
        acc.copy(grown, 0, 0, this.accLen);
        this.pool?.give(acc); // only the incomplete frame's start was in it, now copied: nothing else refers to it
      }
      acc = grown;
      this.acc = grown;
    }
    let at = this.accLen;
    for (const b of this.later) at += b.copy(acc, at);
    data.copy(acc, at);
    this.work.copiedBytes += this.laterLen + data.length;
    this.accLen = len;
    this.later = [];
    this.laterLen = 0;
  }

  private checkLimit(bytes: number): void {
    const err = this.limitError(bytes);
    if (err) throw err;
  }

  private limitError(bytes: number): ProtocolError | null {
    if (bytes <= this.maxFrameBytes) return null;
    return new ProtocolError(
      ProtocolErrorCode.FrameTooLarge,
      `A request of at least ${bytes} bytes exceeds the frame limit of ${this.maxFrameBytes} bytes (maxFrameBytes).`,
    );
  }
}
