/**
 * Streaming framer for a Forward connection: msgpack values back to back with
 * no length prefix. Handles a value split across reads and many values in one
 * read, drops `nil` keep-alives, and switches to JSON framing when the
 * connection's first byte is `[` or `{` (Fluentd's in_forward does the same).
 *
 * Memory is bounded by `maxFrameBytes`: an incomplete value larger than that
 * is an error (TRB_FWD_FRAME_TOO_LARGE) before any more is buffered.
 */
import { ProtocolError, ProtocolErrorCode } from './errors';
import { findJsonEnd } from './json-request';
import { INCOMPLETE, scanHint, skipValue } from './msgpack-scan';

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type WireFormat = 'unknown' | 'msgpack' | 'json';

export class FrameDecoder {
  format: WireFormat = 'unknown';
  /**
   * Set when bad bytes followed complete frames in the same push: those frames
   * are returned, the stream is dead, and every later push throws this.
   */
  error: Error | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;

  constructor(private readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes held for a frame not complete yet (after the last push). */
  get bufferedBytes(): number {
    return this.pendingBytes;
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
   */
  pushRanges(data: Buffer): { buf: Buffer; ranges: number[] } {
    if (this.error) throw this.error;
    if (data.length === 0) return { buf: data, ranges: [] };
    if (this.format === 'unknown') {
      const first = data[0];
      this.format = first === 0x5b || first === 0x7b ? 'json' : 'msgpack';
    }
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes < this.need) {
      this.checkLimit(this.need);
      return { buf: data, ranges: [] };
    }
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    const frames: number[] = [];
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      let next: number;
      if (this.format === 'json') {
        const c = buf[pos];
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          pos++;
          continue;
        }
        next = findJsonEnd(buf, pos, end);
        if (next < 0) scanHint.need = end + 1;
      } else {
        try {
          next = skipValue(buf, pos, end);
        } catch (err) {
          if (frames.length === 0) throw err;
          this.error = err as Error;
          return { buf, ranges: frames };
        }
      }
      if (next === INCOMPLETE) {
        this.need = scanHint.need - pos;
        this.checkLimit(this.need);
        break;
      }
      if (next - pos > this.maxFrameBytes) this.checkLimit(next - pos);
      if (!(next - pos === 1 && buf[pos] === 0xc0)) frames.push(pos, next);
      pos = next;
    }
    if (pos >= end) {
      this.pending = [];
      this.pendingBytes = 0;
      this.need = 0;
    } else {
      const rest = buf.subarray(pos);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      this.checkLimit(this.pendingBytes);
    }
    return { buf, ranges: frames };
  }

  private checkLimit(bytes: number): void {
    if (bytes > this.maxFrameBytes) {
      throw new ProtocolError(
        ProtocolErrorCode.FrameTooLarge,
        `A request of at least ${bytes} bytes exceeds the frame limit of ${this.maxFrameBytes} bytes (maxFrameBytes).`,
      );
    }
  }
}
