/**
 * A `filters:` list made runnable over chunks of msgpack entries, as both
 * roles hold them (the forwarder before its buffer, egress in its encoder
 * threads). Filters run in config order, each on the events whose tag its
 * `match` takes.
 *
 * Fast path: a chunk whose tag no filter matches comes back as null and is
 * not decoded at all. When every matching filter can work on the record's
 * bytes (grep, throttle, record's top-level changes, aws_metadata), the
 * record stays bytes (RawRecord): only the values read are decoded, and
 * events that only keep or drop go on as they came, copied in runs between
 * drops (not at all when none is dropped). Otherwise the record is decoded
 * with msgpackr and packed again after the filters. The time bytes are
 * always copied as they came. The same input gives the same output bytes,
 * so a replay writes what the first run wrote.
 *
 * An entry that cannot be read (not `[time, map]`, an unknown ext type) is
 * passed on unchanged and counted in `unreadable`: filters never lose data
 * that was accepted.
 */
import { type EventFilter, compileTagPattern } from '@tributary/core';
import * as protocol from '@tributary/forward-protocol';
import type { FilterTotals } from './metrics';
import { Output } from './output';
import { RawRecord, UnreadableValue, unpackr } from './raw-record';

// bound once: a call through the package's re-export reads a getter every time (measurable per event)
const { EventTime, INCOMPLETE, isRecordRefusal, packRecord, readArrayHeader, readInt, readMapHeader, skipTime, skipValue } = protocol;
type EventTime = protocol.EventTime;
import type { Filter, FilterContext, FilterCounts, FilterEvent, FilterSpec } from './spec';

/** One configured filter as the chain runs it. */
interface Stage {
  readonly test: (tag: string) => boolean;
  readonly filter: Filter;
  readonly counts: FilterCounts;
}

/** The kept events of one chunk: their entries back to back and each one's index in the original chunk. */
export interface FilteredEntries {
  entries: Buffer;
  indexes: number[];
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** Tags seen before are looked up, not matched again; the cache is cleared past this many tags (tags are unbounded). */
const TAG_CACHE_MAX = 4096;

export class FilterChain implements EventFilter {
  /** Entries passed on unchanged because they could not be read. */
  unreadable = 0;
  private readonly byTag = new Map<string, Stage[]>();

  constructor(private readonly stages: readonly Stage[]) {}

  /** Per configured filter, in config order: what it dropped and failed on so far. */
  get counts(): readonly FilterCounts[] {
    return this.stages.map((s) => s.counts);
  }

  /** The counts so far, as the metrics take them. */
  totals(): FilterTotals {
    return {
      dropped: this.stages.map((s) => s.counts.dropped),
      failed: this.stages.map((s) => s.counts.failed),
      unreadable: this.unreadable,
    };
  }

  /** The counts since the last call, reset (an encoder thread hands them back with each job). */
  takeCounts(): FilterTotals {
    const t = this.totals();
    for (const s of this.stages) {
      s.counts.dropped = 0;
      s.counts.failed = 0;
    }
    this.unreadable = 0;
    return t;
  }

  get size(): number {
    return this.stages.length;
  }

  private stagesFor(tag: string): Stage[] {
    let s = this.byTag.get(tag);
    if (!s) {
      if (this.byTag.size >= TAG_CACHE_MAX) this.byTag.clear();
      s = this.stages.filter((st) => st.test(tag));
      this.byTag.set(tag, s);
    }
    return s;
  }

  /**
   * The entries `buf[start, end)` of one chunk of `tag` through the filters,
   * or null when no filter matches the tag (the caller passes the chunk on
   * as it is). `buf` is only read; the result is a new buffer, or a view
   * of `buf` when every event was kept unchanged. With `into`, written
   * entries go into that Output after what it holds, and the result is a
   * view of it (its owner decides how long that stays valid).
   */
  run(tag: string, buf: Buffer, start = 0, end = buf.length, into?: Output): FilteredEntries | null {
    const stages = this.stagesFor(tag);
    if (!stages.length) return null;
    if (buf.buffer instanceof SharedArrayBuffer) {
      // egress hands shared memory, which msgpackr's native string extraction refuses ("source must be an ArrayBuffer")
      buf = Buffer.from(buf.subarray(start, end));
      start = 0;
      end = buf.length;
    }
    const changes = stages.some((s) => s.filter.changes);
    const raw = stages.every((s) => s.filter.applyRaw);
    const indexes: number[] = [];
    const event = new Event(tag, buf);
    // Kept entries that go out as they came are copied in runs (`buf[runFrom, pos)`), when an entry is dropped or
    // changed; when none is, the chunk's own bytes are the result, uncopied.
    // No closures over `out` and `runFrom`: the loop keeps them in registers, not in a context object.
    let out: Output | null = null;
    let runFrom = -1;
    let pos = start;
    let index = 0;
    while (pos < end) {
      if (out !== null) out.readFrom(runFrom >= 0 ? runFrom : pos);
      const timeStart = entryTimeStart(buf, pos, end);
      const recordStart = timeStart < 0 ? -1 : skipEventTime(buf, timeStart, end);
      const isEntry = recordStart >= 0 && recordStart < end && isMap(buf, recordStart, end);
      // the raw path scans the record as it parses it; the others (and a record it cannot take) skip over it
      const rawRecord = raw && isEntry ? RawRecord.parse(buf, recordStart, end) : null;
      const entryEnd = rawRecord ? rawRecord.end : isEntry ? skipValue(buf, recordStart, end) : INCOMPLETE;
      if (entryEnd === INCOMPLETE) {
        // not an entry: the rest cannot be split into events, so it passes on as it is
        this.unreadable++;
        if (runFrom < 0) runFrom = pos;
        indexes.push(index);
        pos = end;
        break;
      }
      let kept: boolean;
      let asCame = !changes;
      try {
        if (changes) {
          out = flushRun(out, into, buf, runFrom, pos, start, end);
          runFrom = -1;
        }
        if (rawRecord) {
          event.reset(timeStart, recordStart, EMPTY);
          kept = this.applyRaw(stages, event, rawRecord, changes ? out : null, pos, recordStart);
        } else {
          const body = buf.subarray(recordStart, entryEnd);
          event.reset(timeStart, recordStart, unpackr.unpack(body) as Record<string, unknown>);
          kept = this.apply(stages, event, changes ? out : null, pos, recordStart);
        }
      } catch (err) {
        if (!(err instanceof UnreadableValue)) throw err;
        // the record cannot be decoded (an unknown ext type): it passes on as it came
        this.unreadable++;
        kept = true;
        asCame = true;
      }
      if (kept) indexes.push(index);
      if (kept && asCame) {
        if (runFrom < 0) runFrom = pos;
      } else if (runFrom >= 0) {
        out = flushRun(out, into, buf, runFrom, pos, start, end);
        runFrom = -1;
      }
      index++;
      pos = entryEnd;
    }
    if (!out && runFrom === start) return { entries: buf.subarray(start, end), indexes };
    if (runFrom >= 0) out = flushRun(out, into, buf, runFrom, pos, start, end);
    if (!out) return { entries: Buffer.alloc(0), indexes };
    return { entries: into ? out.view() : out.take(), indexes };
  }

  /** The decoded record through the stages; with `out` (filters that change records), appends the kept entry to it. */
  private apply(stages: readonly Stage[], event: Event, out: Output | null, pos: number, recordStart: number): boolean {
    for (const s of stages) {
      const next = s.filter.apply(event, s.counts);
      if (!next) return false;
      event.record = next;
    }
    if (out) {
      let bytes: Buffer;
      try {
        bytes = packRecord(event.record);
      } catch (err) {
        throw asUnreadable(err);
      }
      out.copy(event.buf, pos, recordStart);
      out.bytes(bytes);
    }
    return true;
  }

  /** The record as bytes through the stages (each has applyRaw); with `out`, appends the kept entry to it. */
  private applyRaw(
    stages: readonly Stage[],
    event: Event,
    record: RawRecord,
    out: Output | null,
    pos: number,
    recordStart: number,
  ): boolean {
    for (const s of stages) if (!s.filter.applyRaw?.(record, event, s.counts)) return false;
    if (out) {
      try {
        record.writeEntry(out, pos, recordStart); // all of the entry, or nothing when it throws
      } catch (err) {
        throw asUnreadable(err);
      }
    }
    return true;
  }

  /** Resolves once every filter's first background read ended (metadata known, or its failure logged); never rejects. */
  async ready(): Promise<void> {
    await Promise.all(this.stages.map((s) => s.filter.ready?.()));
  }

  close(): void {
    for (const s of this.stages) s.filter.close?.();
  }
}

/** Builds the chain of a `filters:` list (validated) with `registry`'s specs. */
export function createFilterChain(
  configs: readonly { type: string; match?: string }[],
  ctx: FilterContext,
  registry: readonly FilterSpec[],
): FilterChain {
  const stages: Stage[] = [];
  try {
    for (const c of configs) {
      const spec = registry.find((s) => s.type === c.type);
      if (!spec) throw new Error(`No filter type "${c.type}" is registered.`);
      stages.push({ test: compileTagPattern(c.match ?? '**'), filter: spec.create(c, ctx), counts: { dropped: 0, failed: 0 } });
    }
  } catch (err) {
    for (const s of stages) s.filter.close?.();
    throw err;
  }
  return new FilterChain(stages);
}

/**
 * Copies the run of kept entries `buf[runFrom, pos)` (none when `runFrom` is
 * -1) to the chunk's Output and returns it. With `out` null, first opens the
 * Output: `into`, staged from the first source byte still to be copied, or a
 * new one.
 */
function flushRun(
  out: Output | null,
  into: Output | undefined,
  buf: Buffer,
  runFrom: number,
  pos: number,
  start: number,
  end: number,
): Output {
  if (out === null) {
    out = into ?? new Output(end - start + (end - start) / 4);
    out.begin();
    // a reused Output takes the rest of the chunk in one copy, then moves kept pieces within itself
    if (into) out.stage(buf, runFrom >= 0 ? runFrom : pos, end);
  }
  if (runFrom >= 0) out.copy(buf, runFrom, pos);
  return out;
}

/** Where the time of the entry at `pos` starts, or -1 when it is not a 2-element array (fixarray, the common case, read inline). */
function entryTimeStart(buf: Buffer, pos: number, end: number): number {
  if (buf[pos] === 0x92) return pos + 1;
  const arr = readArrayHeader(buf, pos, end);
  return arr?.count === 2 ? arr.next : -1;
}

/** skipTime with the EventTime fixext8 (what Fluentd and Tributary write) read inline. */
function skipEventTime(buf: Buffer, pos: number, end: number): number {
  if (buf[pos] === 0xd7 && buf[pos + 1] === 0 && pos + 10 <= end) return pos + 10;
  return skipTime(buf, pos, end);
}

function isMap(buf: Buffer, pos: number, end: number): boolean {
  const b = buf[pos];
  return (b >= 0x80 && b <= 0x8f) || readMapHeader(buf, pos, end) !== null;
}

/** The event a filter sees, one object reused for a chunk's events; the time is read from its bytes only when a filter asks. */
class Event implements FilterEvent {
  private eventTime: EventTime | null = null;
  private timeStart = 0;
  private timeEnd = 0;
  record: Record<string, unknown> = EMPTY;

  constructor(
    readonly tag: string,
    readonly buf: Buffer,
  ) {}

  reset(timeStart: number, timeEnd: number, record: Record<string, unknown>): void {
    this.timeStart = timeStart;
    this.timeEnd = timeEnd;
    this.record = record;
    this.eventTime = null;
  }

  private read(): EventTime {
    this.eventTime ??= readEventTime(this.buf, this.timeStart, this.timeEnd);
    return this.eventTime;
  }

  get time(): number {
    const t = this.read();
    return t.seconds + t.nanoseconds / 1e9;
  }

  timeText(): string {
    return this.read().toRfc3339();
  }
}

function readEventTime(buf: Buffer, pos: number, end: number): EventTime {
  const arr = readArrayHeader(buf, pos, end);
  if (arr) return readEventTime(buf, arr.next, end); // [EventTime, metadata]
  const b = buf[pos];
  if (b === 0xd7) return new EventTime(buf.readUInt32BE(pos + 2), buf.readUInt32BE(pos + 6));
  if (b === 0xc7) return new EventTime(buf.readUInt32BE(pos + 3), buf.readUInt32BE(pos + 7));
  if (b === 0xca) return EventTime.fromSeconds(buf.readFloatBE(pos + 1));
  if (b === 0xcb) return EventTime.fromSeconds(buf.readDoubleBE(pos + 1));
  return new EventTime(readInt(buf, pos, end)?.value ?? 0, 0);
}

/**
 * An error packing a changed record again (whole, or the pairs a filter set
 * on its bytes), as UnreadableValue when the record is at fault: the encoder
 * refuses it (the keys `constructor` and `toJSON` with values that are no
 * functions make msgpackr call `toJSON` and throw), or a filter nested it
 * past the stack. The event then passes on as it came (counted as
 * unreadable), where a throw failed the whole batch and its sender resent it
 * for ever. Any other error is a filter's bug: returned as it is, to
 * propagate.
 */
function asUnreadable(err: unknown): unknown {
  if (!isRecordRefusal(err)) return err;
  return new UnreadableValue(`the record cannot be packed again (${(err as Error).message})`);
}
