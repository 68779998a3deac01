/**
 * EventTime — msgpack ext type 0, 8 bytes: uint32 BE seconds, uint32 BE
 * nanoseconds. Fluentd writes it as fixext8 (`d7 00 …`); ext8 (`c7 08 00 …`)
 * is accepted too. Written by hand: msgpackr's addExtension cannot pack type 0.
 */
export class EventTime {
  constructor(
    readonly seconds: number,
    readonly nanoseconds: number,
  ) {}

  static now(): EventTime {
    const ms = Date.now();
    return new EventTime(Math.floor(ms / 1000), (ms % 1000) * 1_000_000);
  }

  /**
   * From Unix seconds with a fraction: the fraction becomes nanoseconds,
   * carried into the seconds when it rounds to a whole second (0.9999999999
   * is 1 s 0 ns, never 0 s 1,000,000,000 ns).
   */
  static fromSeconds(t: number): EventTime {
    let s = Math.floor(t);
    let ns = Math.round((t - s) * 1e9);
    if (ns >= 1e9) {
      s += 1;
      ns -= 1e9;
    }
    return new EventTime(s, ns);
  }

  static fromDate(date: Date): EventTime {
    const ms = date.getTime();
    return new EventTime(Math.floor(ms / 1000), (((ms % 1000) + 1000) % 1000) * 1_000_000);
  }

  /** RFC 3339 in UTC with all nine nanosecond digits (nanoseconds of 1e9 or more carry into the seconds). */
  toRfc3339(): string {
    const carry = Math.floor(this.nanoseconds / 1e9);
    const base = new Date((this.seconds + carry) * 1000).toISOString().slice(0, 19);
    return `${base}.${String(this.nanoseconds - carry * 1e9).padStart(9, '0')}Z`;
  }
}

export const EVENT_TIME_EXT = 0;
export const EVENT_TIME_BYTES = 10;

/** Writes fixext8 EventTime at `pos`; returns the position after it. */
export function writeEventTime(buf: Buffer, pos: number, seconds: number, nanoseconds: number): number {
  buf[pos] = 0xd7;
  buf[pos + 1] = EVENT_TIME_EXT;
  buf.writeUInt32BE(seconds >>> 0, pos + 2);
  buf.writeUInt32BE(nanoseconds >>> 0, pos + 6);
  return pos + EVENT_TIME_BYTES;
}

export function encodeEventTime(time: EventTime): Buffer {
  const buf = Buffer.allocUnsafe(EVENT_TIME_BYTES);
  writeEventTime(buf, 0, time.seconds, time.nanoseconds);
  return buf;
}
