/**
 * Acknowledgement: `{"ack": <chunk>}` as a msgpack map (never JSON to a msgpack
 * client), where <chunk> is the request's `chunk` option value copied byte for
 * byte, msgpack header included — str or bin, trailing newline kept.
 *
 *   ack = fixmap(1) { fixstr "ack" : chunk-value }   ; 81 a3 61 63 6b <chunk>
 */
import type { AckedRun } from './request';

export const ACK_PREFIX = Buffer.from([0x81, 0xa3, 0x61, 0x63, 0x6b]);

/** `chunkValue` is the raw msgpack value from `ForwardChunk.ack`. */
export function encodeAck(chunkValue: Buffer): Buffer {
  const out = Buffer.allocUnsafe(ackLength(chunkValue.length));
  writeAck(out, 0, chunkValue, 0, chunkValue.length);
  return out;
}

/** Bytes of the ack of a `chunk` value of `valueBytes` bytes (header included). */
export function ackLength(valueBytes: number): number {
  return ACK_PREFIX.length + valueBytes;
}

/**
 * Writes the ack of the `chunk` value `src[start, end)` at `out[pos]` (room
 * for `ackLength(end - start)` bytes); returns where it ends. Byte by byte:
 * an id is a few dozen bytes, for which `Buffer#copy`'s call costs more than the copy.
 */
export function writeAck(out: Uint8Array, pos: number, src: Uint8Array, start: number, end: number): number {
  out[pos] = 0x81;
  out[pos + 1] = 0xa3;
  out[pos + 2] = 0x61;
  out[pos + 3] = 0x63;
  out[pos + 4] = 0x6b;
  let p = pos + ACK_PREFIX.length;
  for (let i = start; i < end; i++) out[p++] = src[i];
  return p;
}

/** The JSON answer for a client that spoke JSON (Fluentd answers in the client's format). */
export function encodeJsonAck(chunkId: string): Buffer {
  return Buffer.from(JSON.stringify({ ack: chunkId }));
}

const NO_ACKS = Buffer.alloc(0);

/**
 * A cursor over the ids of acks written back to back by `writeAck`, in order:
 * after `next()` returned true, the id's bytes are `acks[start, end)`, UTF-8
 * text when `str`, else bin (whose text is its base64). One cursor serves
 * every run: nothing is allocated per id.
 */
export class AckedIdCursor {
  start = 0;
  end = 0;
  str = false;
  private acks: Buffer = NO_ACKS;
  private pos = 0;

  /** Starts over the acks `acks`; returns the cursor. */
  over(acks: Buffer): this {
    this.acks = acks;
    this.pos = 0;
    return this;
  }

  /** Moves to the next id: false after the last. Throws when the acks hold no id where one should be. */
  next(): boolean {
    const acks = this.acks;
    if (this.pos >= acks.length) {
      this.acks = NO_ACKS; // keeps no run's memory alive once done
      return false;
    }
    const value = this.pos + ACK_PREFIX.length;
    const b = acks[value];
    // the header's size: fixstr 1, str8/bin8 2, str16/bin16 3, str32/bin32 5 (0: not an id)
    const header =
      b >= 0xa0 && b <= 0xbf ? 1 : b === 0xd9 || b === 0xc4 ? 2 : b === 0xda || b === 0xc5 ? 3 : b === 0xdb || b === 0xc6 ? 5 : 0;
    const start = value + header;
    if (header === 0 || start > acks.length) throw new Error(`The acks hold no id at byte ${value}.`);
    const len =
      header === 1 ? b & 0x1f : header === 2 ? acks[value + 1] : header === 3 ? acks.readUInt16BE(value + 1) : acks.readUInt32BE(value + 1);
    if (start + len > acks.length) throw new Error(`The acks hold no id at byte ${value}.`);
    this.start = start;
    this.end = start + len;
    this.str = b <= 0xbf || b === 0xd9 || b === 0xda || b === 0xdb;
    this.pos = this.end;
    return true;
  }
}

/**
 * Calls `each(i, start, end, str)` for the id of each ack in `acks` (acks
 * written back to back by `writeAck`, in order): the id's bytes are
 * `acks[start, end)`, UTF-8 text when `str`, else bin (whose text is its base64).
 */
export function forEachAckedId(acks: Buffer, each: (i: number, start: number, end: number, str: boolean) => void): void {
  const ids = new AckedIdCursor().over(acks);
  for (let i = 0; ids.next(); i++) each(i, ids.start, ids.end, ids.str);
}

/** The text of a `chunk` id's bytes (`ForwardChunk.chunkId`): str as UTF-8, bin as base64. */
export function chunkIdOf(buf: Buffer, start: number, end: number, str: boolean): string {
  return buf.toString(str ? 'utf8' : 'base64', start, end);
}

/** A merged run's ids (`ForwardChunk.ids`) as the coalescer makes them: its acks hold the ids, made text only when asked for. */
export class AckedIds implements AckedRun {
  private texts: string[] | null = null;

  constructor(
    readonly sizes: number[],
    readonly acks: Buffer,
  ) {}

  get chunkIds(): string[] {
    if (this.texts === null) {
      const texts: string[] = [];
      forEachAckedId(this.acks, (i, start, end, str) => {
        texts[i] = chunkIdOf(this.acks, start, end, str);
      });
      this.texts = texts;
    }
    return this.texts;
  }
}
