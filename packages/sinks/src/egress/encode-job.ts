/**
 * One encoding job: log records (their entries side by side in one buffer)
 * → NDJSON lines grouped by partition, tag and hour, cut into parts of about
 * PART_BYTES and gzipped part by part. Each part is a complete gzip member:
 * members written back to back are one valid gzip file (RFC 1952 §2.2), so an
 * object can grow across jobs without keeping a deflate stream open, and a
 * job's memory stays bounded whatever one chunk inflates to.
 *
 * Pure: it runs the same in a worker thread or inline; `runEncodeJob`
 * compresses each part as it is cut, `runEncodeJobAsync` on libuv's thread
 * pool while the next part is written.
 * Events that cannot be encoded come back as dead letters (raw bytes in
 * base64, with the reason); the rest of the job goes on.
 */
import { promisify } from 'node:util';
import { type ZlibOptions, gzip, gzipSync } from 'node:zlib';
import type { DeadLetter, EventFilter, EventFilterCounts } from '@tributary/core';
import { INCOMPLETE, skipValue } from '@tributary/forward-protocol';
import { type FieldNames, LineWriter, Out, type RecordFields, Unencodable, fieldNameBytes, recordFields } from './transcode';

/**
 * Raw NDJSON bytes per gzip member (and per Firehose packing unit): large
 * enough that member boundaries cost nothing measurable in size (deflate's
 * window is 32 KiB), small enough that a job with many tags and hours open
 * holds little.
 */
export const PART_BYTES = 256 * 1024;

export interface JobRecord {
  tag: string;
  /** Prefix of each event's `_id`: the record's dedupe key, or its log position. */
  idPrefix: string;
  partition: number;
  /** The record's entries are `entries[start, end)`. */
  start: number;
  end: number;
}

export interface EncodeJob {
  entries: Uint8Array;
  records: JobRecord[];
  fields: FieldNames;
  /** One gzip output per level listed (sinks may differ in level). */
  gzipLevels: number[];
  /** Also keep the uncompressed lines with their ends (for stream sinks such as Firehose). */
  ndjson: boolean;
}

export interface EncodedGroup {
  partition: number;
  tag: string;
  /** Hours since the epoch; -1 for events whose time was kept raw. */
  hour: number;
  events: number;
  /** gzip[i]: the members for gzipLevels[i]. */
  gzip: Uint8Array[][];
  /** Uncompressed parts and, for each, the end of every line in it (when `ndjson`). */
  ndjson: Uint8Array[];
  lineEnds: Uint32Array[];
}

export type { DeadLetter } from '@tributary/core';

export interface EncodeResult {
  groups: EncodedGroup[];
  deadLetters: DeadLetter[];
  events: number;
  /** What the filters did in this job (with a filter). */
  filterCounts?: EventFilterCounts;
}

/**
 * Compresses the parts: at once, or on libuv's thread pool (promises), so an
 * encoder thread goes on writing the next part's lines meanwhile.
 */
export interface Compressor {
  /** Compresses `buf[0, length)` at each level: the members, or their promises. */
  compress(buf: Buffer, length: number, levels: number[]): Array<Uint8Array | Promise<Uint8Array>>;
  /** The buffer the next part is written into, once `buf` went to `compress` (and is not kept): `buf` itself when that is done with it. */
  next(buf: Buffer): Buffer;
}

const GZIP_NOW: Compressor = {
  compress: (buf, length, levels) => levels.map((level) => gzipSync(buf.subarray(0, length), { level })),
  next: (buf) => buf,
};

class GroupWriter {
  readonly out = new Out(16 * 1024);
  readonly group: EncodedGroup;
  /** members[i]: the gzip members for gzipLevels[i], or their promises. */
  readonly members: Array<Array<Uint8Array | Promise<Uint8Array>>>;
  private ends: number[] = [];

  constructor(
    partition: number,
    tag: string,
    hour: number,
    private readonly job: EncodeJob,
    private readonly compressor: Compressor,
  ) {
    this.group = { partition, tag, hour, events: 0, gzip: [], ndjson: [], lineEnds: [] };
    this.members = job.gzipLevels.map(() => []);
  }

  /** Counts the line just written; true when it completed a part (and the part was cut). */
  lineDone(): boolean {
    this.group.events++;
    if (this.job.ndjson) this.ends.push(this.out.pos);
    return this.out.pos >= PART_BYTES && this.cut();
  }

  /** Compresses what was written as one part (true), unless nothing was (false). */
  cut(): boolean {
    const { out, job, compressor } = this;
    if (out.pos === 0) return false;
    const buf = out.buf;
    compressor.compress(buf, out.pos, job.gzipLevels).forEach((m, i) => this.members[i].push(m));
    if (job.ndjson) {
      // the lines are kept: the next part gets a buffer of its own
      this.group.ndjson.push(buf.subarray(0, out.pos));
      this.group.lineEnds.push(Uint32Array.from(this.ends));
      this.ends = [];
      out.buf = Buffer.allocUnsafe(buf.length);
    } else out.buf = compressor.next(buf);
    out.pos = 0;
    return true;
  }
}

/** What a job wrote, before its compressed parts are all there. */
interface Written {
  writers: GroupWriter[];
  deadLetters: DeadLetter[];
  events: number;
  filterCounts?: EventFilterCounts;
}

/**
 * The job's encoding: it yields after each part it cut (so a caller
 * compressing on the thread pool can bound the parts in flight) and returns
 * what it wrote. With `filter`, a record's events go through it first: the
 * kept ones are encoded, each under its index in the chunk (a dropped event
 * leaves a gap in the `_id`s, never a shift).
 */
function* encodeSteps(job: EncodeJob, filter: EventFilter | undefined, compressor: Compressor): Generator<void, Written, void> {
  const entries = Buffer.from(job.entries.buffer, job.entries.byteOffset, job.entries.byteLength);
  const lines = new LineWriter(fieldNameBytes(job.fields));
  const writers = new Map<string, GroupWriter>();
  const deadLetters: DeadLetter[] = [];
  let events = 0;
  for (const r of job.records) {
    const rf: RecordFields = recordFields(job.fields, r.idPrefix, r.tag);
    const kept = filter?.run(r.tag, entries, r.start, r.end) ?? null;
    const src = kept ? kept.entries : entries;
    const end = kept ? src.length : r.end;
    let hourOfWriter = Number.NaN;
    let writer: GroupWriter | undefined;
    let pos = kept ? 0 : r.start;
    let k = 0;
    while (pos < end) {
      const index = kept ? kept.indexes[k] : k;
      // Encode into the writer of the previous event's hour (nearly always the same); move the line if not.
      const w = writer ?? writerFor(writers, r, 0, job, compressor);
      const mark = w.out.pos;
      let cut = false;
      try {
        const next = lines.write(w.out, src, pos, end, index, rf);
        if (lines.hour !== hourOfWriter) {
          const target = writerFor(writers, r, lines.hour, job, compressor);
          if (target !== w) {
            target.out.bytes(w.out.buf.subarray(mark, w.out.pos));
            w.out.pos = mark;
          }
          writer = target;
          hourOfWriter = lines.hour;
        }
        cut = (writer as GroupWriter).lineDone();
        events++;
        pos = next;
      } catch (err) {
        if (!(err instanceof Unencodable)) throw err;
        const next = endOf(src, pos, end);
        const after = next === INCOMPLETE ? end : next;
        deadLetters.push({
          tag: r.tag,
          id: `${r.idPrefix}#${index}`,
          kind: err.kind,
          reason: next === INCOMPLETE ? `${err.message}; the rest of the chunk is unreadable` : err.message,
          raw: src.toString('base64', pos, after),
        });
        pos = after;
      }
      k++;
      if (cut) yield;
    }
  }
  for (const w of writers.values()) if (w.cut()) yield;
  const written: Written = { writers: [...writers.values()], deadLetters, events };
  if (filter) written.filterCounts = filter.takeCounts();
  return written;
}

function result(written: Written, gzip: (w: GroupWriter) => Uint8Array[][]): EncodeResult {
  const groups: EncodedGroup[] = [];
  for (const w of written.writers) {
    if (!w.group.events) continue;
    w.group.gzip = gzip(w);
    groups.push(w.group);
  }
  const { deadLetters, events, filterCounts } = written;
  return filterCounts ? { groups, deadLetters, events, filterCounts } : { groups, deadLetters, events };
}

/** Encodes a job on this thread, compressing each part as it is cut (tests, the inline encoder, a failed thread's jobs). */
export function runEncodeJob(job: EncodeJob, filter?: EventFilter): EncodeResult {
  const steps = encodeSteps(job, filter, GZIP_NOW);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return result(step.value, (w) => w.members as Uint8Array[][]);
}

/** Parts compressing on the thread pool at once per job: the pool's other threads stay free for the file I/O of ingest and sinks. */
const MAX_COMPRESSING = 2;
/** Output buffer of one compression: a 256 KiB part of log lines compresses to well under it, in one pass of the pool. */
const GZIP_CHUNK_BYTES = 64 * 1024;
const gzipLater = promisify(gzip) as (part: Uint8Array, options: ZlibOptions) => Promise<Buffer>;

/**
 * Encodes a job as `runEncodeJob` does, with the same output, but each part
 * is compressed on libuv's thread pool while this thread writes the next
 * one's lines (at most MAX_COMPRESSING at once): on an encoder thread, gzip
 * (a fifth of its work) then runs beside the transcoding instead of after it.
 * A part's buffer is written again once its compression is done.
 */
export async function runEncodeJobAsync(job: EncodeJob, filter?: EventFilter): Promise<EncodeResult> {
  const compressing: Array<Promise<unknown>> = [];
  const spares: Buffer[] = [];
  let lastPart: Promise<unknown> = Promise.resolve();
  const compressor: Compressor = {
    compress(buf, length, levels) {
      const part = buf.subarray(0, length);
      const members = levels.map((level) => gzipLater(part, { level, chunkSize: GZIP_CHUNK_BYTES }));
      lastPart = Promise.all(members);
      // A failure is thrown where the part is awaited (the bound below, or the result); this keeps it
      // from counting as unhandled meanwhile, or once the job already failed on an earlier part.
      lastPart.catch(() => {});
      compressing.push(lastPart);
      return members;
    },
    next(buf) {
      lastPart.then(
        () => spares.push(buf),
        () => {}, // not reused: the job fails on it
      );
      return spares.pop() ?? Buffer.allocUnsafe(buf.length);
    },
  };
  const steps = encodeSteps(job, filter, compressor);
  let step = steps.next();
  while (!step.done) {
    while (compressing.length > MAX_COMPRESSING) await compressing.shift();
    step = steps.next();
  }
  const written = step.value;
  const gzipped = new Map<GroupWriter, Uint8Array[][]>();
  for (const w of written.writers) gzipped.set(w, await Promise.all(w.members.map((m) => Promise.all(m))));
  return result(written, (w) => gzipped.get(w) as Uint8Array[][]);
}

function writerFor(writers: Map<string, GroupWriter>, r: JobRecord, hour: number, job: EncodeJob, compressor: Compressor): GroupWriter {
  const key = `${r.partition}\u0000${hour}\u0000${r.tag}`;
  let w = writers.get(key);
  if (!w) {
    w = new GroupWriter(r.partition, r.tag, hour, job, compressor);
    writers.set(key, w);
  }
  return w;
}

/** Where the value at `pos` ends, or INCOMPLETE when that cannot be told (cut short, or not msgpack). */
function endOf(src: Buffer, pos: number, end: number): number {
  try {
    return skipValue(src, pos, end);
  } catch {
    return INCOMPLETE;
  }
}
