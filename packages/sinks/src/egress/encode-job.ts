/**
 * One encoding job: log records (their entries side by side in one buffer)
 * → NDJSON lines grouped by partition, tag and hour, cut into parts of about
 * PART_BYTES and gzipped part by part. Each part is a complete gzip member:
 * members written back to back are one valid gzip file (RFC 1952 §2.2), so an
 * object can grow across jobs without keeping a deflate stream open, and a
 * job's memory stays bounded whatever one chunk inflates to.
 *
 * Pure and synchronous: it runs the same in a worker thread or inline.
 * Events that cannot be encoded come back as dead letters (raw bytes in
 * base64, with the reason); the rest of the job goes on.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DeadLetter, EventFilter, EventFilterCounts } from '@tributary/core';
// Deep imports, not the package indexes: encoder threads load this file, and the indexes bring
// ajv, yaml, pino, prom-client and the forward server (~17 MB of RSS per thread).
import { gunzipChunkSize } from '@tributary/core/dist/gzip';
import { INCOMPLETE, skipValue } from '@tributary/forward-protocol/dist/msgpack-scan';
import { type FieldNames, LineWriter, Out, type RecordFields, Unencodable, fieldNameBytes, recordFields } from './transcode';

/**
 * Raw NDJSON bytes per gzip member (and per Firehose packing unit): large
 * enough that member boundaries cost nothing measurable in size (deflate's
 * window is 32 KiB), small enough that a job with many tags and hours open
 * holds little.
 */
export const PART_BYTES = 256 * 1024;
/** Most bytes one gzipped record may inflate to here: a bound on a damaged or hostile value (the forward input takes 64 MiB by default). */
const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

export interface JobRecord {
  tag: string;
  /** Prefix of each event's `_id`: the record's dedupe key, or its log position. */
  idPrefix: string;
  partition: number;
  /** The record's entries are `entries[start, end)`; gzipped there when `gzipped` (inflated here, off the main thread). */
  start: number;
  end: number;
  gzipped?: boolean;
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

class GroupWriter {
  readonly out = new Out(16 * 1024);
  readonly group: EncodedGroup;
  private ends: number[] = [];

  constructor(
    partition: number,
    tag: string,
    hour: number,
    levels: number,
    private readonly job: EncodeJob,
  ) {
    this.group = { partition, tag, hour, events: 0, gzip: Array.from({ length: levels }, () => []), ndjson: [], lineEnds: [] };
  }

  lineDone(): void {
    this.group.events++;
    if (this.job.ndjson) this.ends.push(this.out.pos);
    if (this.out.pos >= PART_BYTES) this.cut();
  }

  cut(): void {
    if (this.out.pos === 0) return;
    const part = this.out.buf.subarray(0, this.out.pos);
    this.job.gzipLevels.forEach((level, i) => this.group.gzip[i].push(gzipSync(part, { level })));
    if (this.job.ndjson) {
      // the lines are kept: the next part gets a buffer of its own
      this.group.ndjson.push(this.out.take(this.out.buf.length));
      this.group.lineEnds.push(Uint32Array.from(this.ends));
      this.ends = [];
    } else this.out.pos = 0; // compressed: the buffer is reused
  }
}

/**
 * With `filter`, a record's events go through it first: the kept ones are
 * encoded, each under its index in the chunk (a dropped event leaves a gap
 * in the `_id`s, never a shift).
 */
export function runEncodeJob(job: EncodeJob, filter?: EventFilter): EncodeResult {
  const entries = Buffer.from(job.entries.buffer, job.entries.byteOffset, job.entries.byteLength);
  const lines = new LineWriter(fieldNameBytes(job.fields));
  const writers = new Map<string, GroupWriter>();
  const deadLetters: DeadLetter[] = [];
  let events = 0;
  for (const r of job.records) {
    let base = entries;
    let start = r.start;
    let stop = r.end;
    if (r.gzipped) {
      const gz = entries.subarray(r.start, r.end);
      try {
        base = gunzipSync(gz, { chunkSize: gunzipChunkSize(gz), maxOutputLength: MAX_INFLATED_BYTES });
      } catch (err) {
        // The log stored it so (a damaged value): the whole record is one dead letter, with the bytes as stored.
        deadLetters.push({
          tag: r.tag,
          id: r.idPrefix,
          kind: 'malformed',
          reason: `the chunk's gzip from the log does not inflate (${(err as Error).message})`,
          raw: gz.toString('base64'),
        });
        continue;
      }
      start = 0;
      stop = base.length;
    }
    const rf: RecordFields = recordFields(job.fields, r.idPrefix, r.tag);
    const kept = filter?.run(r.tag, base, start, stop) ?? null;
    const src = kept ? kept.entries : base;
    const end = kept ? src.length : stop;
    let hourOfWriter = Number.NaN;
    let writer: GroupWriter | undefined;
    let pos = kept ? 0 : start;
    let k = 0;
    while (pos < end) {
      const index = kept ? kept.indexes[k] : k;
      // Encode into the writer of the previous event's hour (nearly always the same); move the line if not.
      const w = writer ?? writerFor(writers, r, 0, job);
      const mark = w.out.pos;
      try {
        const next = lines.write(w.out, src, pos, end, index, rf);
        if (lines.hour !== hourOfWriter) {
          const target = writerFor(writers, r, lines.hour, job);
          if (target !== w) {
            target.out.bytes(w.out.buf.subarray(mark, w.out.pos));
            w.out.pos = mark;
          }
          writer = target;
          hourOfWriter = lines.hour;
        }
        (writer as GroupWriter).lineDone();
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
    }
  }
  const groups: EncodedGroup[] = [];
  for (const w of writers.values()) {
    w.cut();
    if (w.group.events) groups.push(w.group);
  }
  return filter ? { groups, deadLetters, events, filterCounts: filter.takeCounts() } : { groups, deadLetters, events };
}

function writerFor(writers: Map<string, GroupWriter>, r: JobRecord, hour: number, job: EncodeJob): GroupWriter {
  const key = `${r.partition}\u0000${hour}\u0000${r.tag}`;
  let w = writers.get(key);
  if (!w) {
    w = new GroupWriter(r.partition, r.tag, hour, job.gzipLevels.length, job);
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
