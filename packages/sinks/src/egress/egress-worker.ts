/**
 * Egress: reads the durable log, encodes each routed record to NDJSON (on
 * encoder threads, overlapping the next poll), gathers a partition's records
 * into objects across polls, hands each sink its objects or lines, and
 * commits the read position only after every routed sink confirmed them.
 *
 * Objects ("windows") are per partition and are cut deterministically from
 * the log's contents, so a replay after a crash rewrites the same keys:
 * - after the record that brings the window to `objects.bytes` of entries;
 * - before a record whose tag would make the window hold more than
 *   `objects.max_tags` tags (a bound on open objects);
 * - on age (`objects.age_ms`). Where the log stores when it appended each
 *   record (`appendedAt`: Kafka), age is counted in the log's time, so the cut
 *   is a function of the log alone and every reader of the partition (a
 *   replay, or the member a rebalance hands it to) cuts the same windows:
 *   before the first record appended `age_ms` or more after the window's
 *   first; or, when nothing follows yet, once the reader is caught up and
 *   the window's first record is `age_ms` + APPEND_CLOCK_SKEW_MS old by this
 *   node's clock (a record appended after that is stamped past the cut). A
 *   log without append times (the embedded one, which no other member reads)
 *   cuts on age only when the reader has caught up: a replay reads at least
 *   that far, so its window is never shorter than the one it overwrites.
 *   For the same reason such a log's window is also cut before its age once
 *   the reader has caught up and a poll waited `maxWaitMs` for nothing new,
 *   when it holds QUIET_CUT_BYTES or more or follows a window cut on size:
 *   the end of a burst is delivered then instead of up to `age_ms` later,
 *   while a trickle (small windows, none cut on size) still waits for its
 *   age, so it makes no more objects.
 * Every object of a window is keyed `part-<partition>-<window's first offset>`;
 * the commit after it moves past the window's last record. Since a window is
 * the same for every reader, a put of a member that lost the partition while
 * the put was under way (a stale writer) writes the same records under the
 * same key as the new owner, whichever lands last: it cannot replace an
 * object with a shorter one.
 *
 * When the reader reports a partition revoked (a Kafka rebalance), egress
 * drops its uncommitted windows of it, open or sealed, without writing or
 * committing them (a put already under way is not recalled): their records
 * come again from the group's last commit, to this member if the partition
 * comes back, and its windows are built again from there, under the keys a
 * replay would write. Otherwise the re-read records would join the window
 * that already holds them.
 *
 * Failure paths: a failed poll or commit backs off and retries, is counted
 * and shows in `problem()` (/readyz). A sink's retryable failure retries that
 * sink's part of the window with backoff; a permanent one dead-letters it.
 * Events the encoder cannot write go to the dead letters of their sinks,
 * and the window goes on: no single event can stop delivery. Anything else
 * that throws (a bug) stops egress before it commits past it, with
 * TRB_EGRESS_BUG in the log and in `problem()`.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  Codes,
  type DeadLetterKind,
  type LogReader,
  type Logger,
  type StoredRecord,
  backoffDelay,
  compileTagPattern,
  entriesBytes,
} from '@tributary/core';
import type { EventFilterCounts, LineBatch, ObjectSink, Sink, SinkObject } from '@tributary/core';
import type { DeadLetter, EncodeJob, EncodeResult, JobRecord } from './encode-job';
import type { Encoder } from './encoder-pool';
import { type FieldNames, hourPartition } from './transcode';

export interface Route {
  match: string;
  sinks: Sink[];
}

export interface EgressMetrics {
  eventsOut(sink: string, n: number): void;
  sinkFailure(sink: string): void;
  deadLetters(sink: string, n: number): void;
  /** Events dead-lettered by egress (once per event, whatever the sinks), by kind. */
  deadLetterEvents(kind: DeadLetterKind, n: number): void;
  unrouted(n: number): void;
  committed(offset: number): void;
  loopError(stage: 'poll' | 'commit' | 'encode'): void;
  objectWritten(sink: string, n: number): void;
  /** What the filters did in one encoding job. */
  filtered(counts: EventFilterCounts): void;
}

export interface ObjectPolicy {
  /** Entries bytes after which a window is cut. */
  bytes: number;
  /** Age after which a window is cut once the reader caught up. */
  ageMs: number;
  /** Tags one window may hold (each tag and hour is an object). */
  maxTags: number;
}

export interface EgressOptions {
  reader: LogReader;
  routes: Route[];
  encoder: Encoder;
  fields: FieldNames;
  /** Log records per poll. */
  pollRecords: number;
  maxWaitMs: number;
  objects: ObjectPolicy;
  backoff: { initialMs: number; maxMs: number };
  logger: Logger;
  metrics: EgressMetrics;
}

/**
 * How far this node's clock may run ahead of the log's (the Kafka brokers')
 * before a window cut on age when nothing follows it could differ from a
 * replay's: NTP keeps EC2 clocks within milliseconds.
 */
export const APPEND_CLOCK_SKEW_MS = 1000;
/**
 * Entries bytes from which a window of a log without append times is cut as
 * soon as its stream went quiet (caught up, and a whole poll wait with
 * nothing new) rather than on age: about 5,000 events of ~200 B, an object
 * worth its own file. A window that follows one cut on size is cut when
 * quiet whatever its size: it is the end of a burst.
 */
export const QUIET_CUT_BYTES = 1024 * 1024;
/** Windows sealed but not yet delivered and committed; past this, polling waits. */
const MAX_SEALED = 2;
/**
 * Encoding jobs in flight per encoder thread: one it encodes and one queued,
 * so a thread never waits for the main thread between jobs.
 */
const JOBS_PER_THREAD = 2;
/**
 * Most entries bytes in one encoding job (a larger record is a job of its
 * own). A poll is split into jobs of this size, started as jobs settle, so
 * the copies in flight hold JOBS_PER_THREAD x threads x JOB_BYTES whatever
 * the poll's size: whole polls as jobs (8 MiB each, four in flight with two
 * threads) were 30-40 MB of the aggregator's RSS.
 */
const JOB_BYTES = 2 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** A job's outcome: its output, or (when the encoder failed) its records as dead letters. */
type JobOutcome = EncodeResult | { failed: Error; deadLetters: DeadLetter[] };

/** Records of one poll and window bound for one encoding job, started when the encoder has room for it. */
interface QueuedJob {
  records: StoredRecord[];
  /** Bytes of the records as stored (what the job's buffer holds). */
  size: number;
  /** Settles the window's promise of this job with the job's outcome. */
  started(outcome: Promise<JobOutcome>): void;
}

class Window {
  readonly partition: number;
  readonly first: number;
  /** When the window's age runs out: from its first record's append time where the log has one, else from now. */
  readonly ageEnds: number;
  /** True when `ageEnds` is the log's time (cuts on age are then the same for every reader). */
  readonly logTime: boolean;
  /** The partition's revocations egress had seen when this window opened; a later one makes it stale. */
  readonly generation: number;
  readonly tags = new Set<string>();
  readonly jobs: Array<Promise<JobOutcome>> = [];
  /** Records of the current poll not yet sent to the encoder. */
  segment: StoredRecord[] = [];
  bytes = 0;
  last: number;

  constructor(first: StoredRecord, ageMs: number, generations: ReadonlyMap<number, number>) {
    this.partition = first.partition;
    this.first = first.offset;
    this.last = first.offset;
    this.logTime = first.appendedAt !== undefined;
    this.ageEnds = (first.appendedAt ?? Date.now()) + ageMs;
    this.generation = generations.get(first.partition) ?? 0;
  }

  /** Whether `r`, the partition's next record, is appended past this window's age (log time only). */
  endsBefore(r: StoredRecord): boolean {
    return this.logTime && r.appendedAt !== undefined && r.appendedAt >= this.ageEnds;
  }

  /** When, by this node's clock, the window may be cut on age once the reader is caught up. */
  sealableAt(): number {
    return this.logTime ? this.ageEnds + APPEND_CLOCK_SKEW_MS : this.ageEnds;
  }
}

type Matcher = { test: (tag: string) => boolean; sinks: Sink[] };

export class EgressWorker {
  private running = false;
  /** Set when stop's grace ran out: retry loops give up, uncommitted windows replay on the next start. */
  private abandoned = false;
  private loop: Promise<void> | null = null;
  private finalizing: Promise<void> = Promise.resolve();
  /** Settles when each sealed window is delivered and committed (or given up), oldest first. */
  private readonly sealedWindows: Array<Promise<void>> = [];
  private readonly open = new Map<number, Window>();
  /** Partitions whose last sealed window was cut on size: their open window ends a burst, or continues it. */
  private readonly sizeCut = new Set<number>();
  /** Per partition, how many times the reader reported it revoked. */
  private readonly generations = new Map<number, number>();
  private readonly matchers: Matcher[];
  private readonly routeCache = new Map<string, Sink[]>();
  private readonly gzipLevels: number[];
  private readonly needLines: boolean;
  private failing: string | null = null;
  /** Set when a window could not be finished for a reason retrying cannot fix: egress stops before committing past it. */
  private broken: string | null = null;
  /** Dead-letter kinds already named in a warn line (the first of each kind since start). */
  private readonly warnedKinds = new Set<DeadLetterKind>();
  /** Encoding jobs not yet settled, oldest first. */
  private readonly encoding: Array<Promise<unknown>> = [];
  /** Jobs of the current poll not yet started (its records are valid until the next poll: all start before it). */
  private readonly queued: QueuedJob[] = [];
  /**
   * Shared buffers of JOB_BYTES for jobs' entries, reused: a fresh one per
   * job piled up outside the GC's view (hundreds of MB of RSS under load). A
   * job larger than that (one large record) gets a buffer that is not kept.
   */
  private readonly freeBuffers: SharedArrayBuffer[] = [];
  private readonly maxEncoding: number;

  constructor(private readonly options: EgressOptions) {
    this.matchers = options.routes.map((r) => ({ test: compileTagPattern(r.match), sinks: r.sinks }));
    const sinks = new Set(options.routes.flatMap((r) => r.sinks));
    this.gzipLevels = [...new Set([...sinks].flatMap((s) => (s.kind === 'objects' ? [s.gzipLevel] : [])))];
    this.needLines = [...sinks].some((s) => s.kind === 'lines');
    this.maxEncoding = Math.max(1, options.encoder.threads) * JOBS_PER_THREAD;
  }

  start(): void {
    this.running = true;
    // run() retries the log's failures itself; anything else it throws is a bug, and egress stops on it as on finalize's
    this.loop = this.run().catch((err) => this.stopOnBug('in its poll loop', err));
  }

  /** Why egress is not making progress (a failing poll or commit), for /readyz; null when it is. */
  problem(): string | null {
    return this.broken ?? this.failing;
  }

  /**
   * Stops polling, then delivers and commits what was read, bounded by
   * `graceMs`; whatever is not committed by then replays on the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    const drained = (async () => {
      await this.loop;
      for (const w of [...this.open.values()]) this.seal(w);
      await this.finalizing;
    })();
    const graceOver = new Promise((r) => {
      timer = setTimeout(r, graceMs);
    });
    await Promise.race([drained, graceOver]);
    clearTimeout(timer);
    this.abandoned = true;
    await this.options.encoder.close();
  }

  private async run(): Promise<void> {
    const { reader, pollRecords, maxWaitMs, objects } = this.options;
    let attempt = 0;
    while (this.running && !this.broken) {
      while (this.sealedWindows.length >= MAX_SEALED && this.running) await this.sealedWindows[0];
      let records: StoredRecord[];
      const wait = this.pollWait(maxWaitMs);
      const polled = Date.now();
      try {
        records = await reader.poll(pollRecords, wait);
        attempt = 0;
        this.failing = null;
      } catch (err) {
        await this.loopFailed('poll', err, attempt++);
        continue;
      }
      const revoked = reader.revoked();
      if (revoked.length) this.dropRevoked(revoked);
      for (const r of records) this.add(r);
      for (const w of this.open.values()) this.flushSegment(w);
      await this.startQueued();
      const now = Date.now();
      // Nothing new for a whole poll wait: the log's streams went quiet.
      const quiet = records.length === 0 && wait >= maxWaitMs && now - polled >= maxWaitMs;
      for (const w of [...this.open.values()]) {
        // In log time, the end must be seen after the cut: whatever was appended before it is then read.
        if (now >= w.sealableAt() && reader.caughtUp(w.partition, w.logTime ? w.sealableAt() : 0)) this.seal(w);
        else if (quiet && !w.logTime && this.endsBurst(w) && reader.caughtUp(w.partition, 0)) this.seal(w);
      }
      // A round that neither waited nor read may have done no I/O at all (a reader answering from memory):
      // let timers, sockets and signals in before the next, or the loop starves the process.
      if (records.length === 0 && wait === 0) await new Promise<void>((r) => setImmediate(r));
    }
  }

  /**
   * How long a poll may wait: never past the moment the next open window
   * becomes sealable on age. A window already past it waits for its reader
   * to catch up, which a poll reports by returning early (LogReader), so it
   * does not shorten the wait.
   */
  private pollWait(maxWaitMs: number): number {
    let wait = maxWaitMs;
    const now = Date.now();
    for (const w of this.open.values()) {
      const left = w.sealableAt() - now;
      if (left > 0) wait = Math.min(wait, left);
    }
    return wait;
  }

  /** Forgets the open windows of revoked partitions and makes their sealed ones stale (not written, not committed). */
  private dropRevoked(partitions: readonly number[]): void {
    for (const p of partitions) {
      this.generations.set(p, (this.generations.get(p) ?? 0) + 1);
      const w = this.open.get(p);
      this.open.delete(p);
      this.sizeCut.delete(p);
      this.options.logger.info(
        { code: Codes.TRB_LOG_REVOKED, partition: p, from: w?.first },
        `Partition ${p} was revoked from egress's reader; egress drops what it holds of it uncommitted${
          w ? ` (an open window from offset ${w.first})` : ''
        }, which is read again from the group's last commit.`,
      );
    }
  }

  /** Whether a window of a log without append times is cut once its stream went quiet: it is large, or follows a size cut. */
  private endsBurst(w: Window): boolean {
    return w.bytes >= QUIET_CUT_BYTES || this.sizeCut.has(w.partition);
  }

  private stale(w: Window): boolean {
    return (this.generations.get(w.partition) ?? 0) !== w.generation;
  }

  private add(r: StoredRecord): void {
    const { objects } = this.options;
    let w = this.open.get(r.partition);
    if (w && ((!w.tags.has(r.tag) && w.tags.size >= objects.maxTags) || w.endsBefore(r))) {
      this.flushSegment(w);
      this.seal(w);
      w = undefined;
    }
    if (!w) {
      w = new Window(r, objects.ageMs, this.generations);
      this.open.set(r.partition, w);
    }
    w.tags.add(r.tag);
    w.segment.push(r);
    w.bytes += entriesBytes(r);
    w.last = r.offset;
    if (w.bytes >= objects.bytes) {
      this.flushSegment(w);
      this.seal(w, true);
    }
  }

  private sinksFor(tag: string): Sink[] {
    let sinks = this.routeCache.get(tag);
    if (!sinks) {
      sinks = this.matchers.find((m) => m.test(tag))?.sinks ?? [];
      if (this.routeCache.size >= 10_000) this.routeCache.clear();
      this.routeCache.set(tag, sinks);
    }
    return sinks;
  }

  /**
   * Queues the window's records of this poll as jobs of about JOB_BYTES;
   * each job's outcome joins the window's at once, so a window sealed before
   * its jobs start still waits for them.
   */
  private flushSegment(w: Window): void {
    if (w.segment.length === 0) return;
    let unrouted = 0;
    const unreadable: DeadLetter[] = [];
    const routed = w.segment.filter((r) => {
      if (this.sinksFor(r.tag).length === 0) {
        unrouted += r.count;
        return false;
      }
      if (r.unreadable === undefined) return true;
      unreadable.push(this.unreadableRecord(r));
      return false;
    });
    w.segment = [];
    if (unrouted) this.options.metrics.unrouted(unrouted);
    if (unreadable.length) w.jobs.push(Promise.resolve({ groups: [], deadLetters: unreadable, events: 0 }));
    let records: StoredRecord[] = [];
    let size = 0;
    const queue = () => {
      const job = { records, size, started: (_: Promise<JobOutcome>) => {} };
      w.jobs.push(
        new Promise<JobOutcome>((resolve) => {
          job.started = resolve;
        }),
      );
      this.queued.push(job);
      records = [];
      size = 0;
    };
    for (const r of routed) {
      const bytes = (r.gzipped ?? r.entries).length;
      if (records.length && size + bytes > JOB_BYTES) queue();
      records.push(r);
      size += bytes;
    }
    if (records.length) queue();
  }

  /** Starts the queued jobs, each once the encoder has room for it (JOBS_PER_THREAD per thread). */
  private async startQueued(): Promise<void> {
    for (let job = this.queued.shift(); job; job = this.queued.shift()) {
      while (this.encoding.length >= this.maxEncoding) await Promise.race(this.encoding);
      let outcome: Promise<JobOutcome>;
      try {
        outcome = this.startJob(job.records, job.size);
      } catch (err) {
        // Thrown before the job reached the encoder (its shared buffer): the job still
        // settles, as a failed one, so its window finishes and the jobs queued behind it start.
        const failed = err as Error;
        const letters = job.records.map((r) => ({ tag: r.tag, id: recordId(r), bytes: r.gzipped ?? r.entries }));
        outcome = Promise.resolve({ failed, deadLetters: this.abandoned ? [] : this.failedJob(failed, letters) });
      }
      job.started(outcome);
    }
  }

  /** Copies records (the reader reuses its buffer) into a shared buffer and encodes them there; the outcome never rejects. */
  private startJob(routed: StoredRecord[], size: number): Promise<JobOutcome> {
    // Shared memory: the encoder thread reads it without a copy; the buffer is reused once the job settled.
    const shared = (size <= JOB_BYTES && this.freeBuffers.pop()) || new SharedArrayBuffer(Math.max(JOB_BYTES, size));
    const entries = new Uint8Array(shared, 0, size);
    const records: JobRecord[] = [];
    let at = 0;
    for (const r of routed) {
      // A record the log hands on gzipped is copied as it is and inflated on the encoder thread.
      const stored = r.gzipped ?? r.entries;
      entries.set(stored, at);
      const record: JobRecord = {
        tag: r.tag,
        idPrefix: recordId(r),
        partition: r.partition,
        start: at,
        end: at + stored.length,
      };
      if (r.gzipped) record.gzipped = true;
      records.push(record);
      at += stored.length;
    }
    const input: EncodeJob = { entries, records, fields: this.options.fields, gzipLevels: this.gzipLevels, ndjson: this.needLines };
    const outcome = encodeSettled(this.options.encoder, input)
      .then(
        (result): JobOutcome => {
          if (result.filterCounts) this.options.metrics.filtered(result.filterCounts);
          return result;
        },
        // once stop gave up (abandoned), nothing is dead-lettered: the window replays on the next start
        (err: Error): JobOutcome => ({
          failed: err,
          deadLetters: this.abandoned
            ? []
            : this.failedJob(
                err,
                records.map((r) => ({ tag: r.tag, id: r.idPrefix, bytes: entries.subarray(r.start, r.end) })),
              ),
        }),
      )
      .finally(() => {
        if (shared.byteLength === JOB_BYTES) this.freeBuffers.push(shared);
        this.encoding.splice(this.encoding.indexOf(outcome), 1);
      });
    this.encoding.push(outcome);
    return outcome;
  }

  private seal(w: Window, onSize = false): void {
    this.open.delete(w.partition);
    if (onSize) this.sizeCut.add(w.partition);
    else this.sizeCut.delete(w.partition);
    this.finalizing = this.finalizing.then(() => this.finalize(w));
    const done = this.finalizing.then(() => {
      this.sealedWindows.splice(this.sealedWindows.indexOf(done), 1);
    });
    this.sealedWindows.push(done);
  }

  /** Delivers a window to every routed sink, then commits past it. Never rejects. */
  private async finalize(w: Window): Promise<void> {
    if (this.broken) return; // never commit past a window that was not delivered
    try {
      const results = await Promise.all(w.jobs);
      if (this.abandoned) return; // stop's grace is over: what is not committed replays on the next start
      if (this.stale(w)) return; // revoked: read again from the group's last commit
      const deadLetters: DeadLetter[] = [];
      const bySink = new Map<Sink, { objects: Map<string, SinkObject>; lines: LineBatch }>();
      const out = (s: Sink) => {
        let o = bySink.get(s);
        if (!o) {
          o = { objects: new Map(), lines: { parts: [], lineEnds: [], events: 0, deadLetters: [] } };
          bySink.set(s, o);
        }
        return o;
      };
      const stamp = String(w.first).padStart(20, '0');
      results.forEach((result) => {
        // loops, not push(...spread): a job can carry hundreds of thousands of dead letters
        for (const d of result.deadLetters) deadLetters.push(d);
        if ('failed' in result) return;
        for (const g of result.groups) {
          for (const s of this.sinksFor(g.tag)) {
            const o = out(s);
            if (s.kind === 'objects') {
              const path = `${safeTag(g.tag)}/${hourPartition(g.hour)}/part-${g.partition}-${stamp}.json.gz`;
              let obj = o.objects.get(path);
              if (!obj) {
                obj = { path, body: [], events: 0 };
                o.objects.set(path, obj);
              }
              for (const m of g.gzip[this.gzipLevels.indexOf(s.gzipLevel)]) obj.body.push(m);
              obj.events += g.events;
            } else {
              for (const p of g.ndjson) o.lines.parts.push(p);
              for (const e of g.lineEnds) o.lines.lineEnds.push(e);
              o.lines.events += g.events;
            }
          }
        }
      });
      if (deadLetters.length) this.routeDeadLetters(w, stamp, deadLetters, out);
      const delivered = await Promise.all([...bySink].map(([sink, o]) => this.deliver(w, sink, o.objects, o.lines)));
      if (!delivered.every(Boolean) || this.stale(w)) return; // abandoned on stop or revoked: read again from the last commit
      await this.commit(w);
    } catch (err) {
      // A bug, not a sink or log failure (those are handled above): no later window may be committed past this one.
      this.stopOnBug(`at partition ${w.partition} offset ${w.first}`, err);
    }
  }

  /**
   * A bug, not a sink or log failure: egress stops, visibly (problem(), a
   * coded log line, a metric), rather than commit a later window past what
   * it could not finish; after a restart it replays from the last commit.
   */
  private stopOnBug(where: string, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.broken = `egress stopped ${where}: ${e.message}; restart the node`;
    this.options.logger.error(
      { code: Codes.TRB_EGRESS_BUG, err: e.stack },
      `Egress stopped ${where} and commits nothing past it until a restart: ${e.message}.`,
    );
    this.options.metrics.loopError('encode');
    // Jobs the dead loop queued but never started settle as failed (nothing dead-lettered: the windows replay
    // after the restart), so nothing waiting on them, stop's drain included, waits out its grace.
    for (const job of this.queued.splice(0)) job.started(Promise.resolve({ failed: e, deadLetters: [] }));
  }

  /** A record the log could not read (it said why, with a coded line): one dead letter with its stored bytes. */
  private unreadableRecord(r: StoredRecord): DeadLetter {
    const raw = base64OrEmpty(r.entries);
    const reason = `${r.unreadable} (${r.count} events${raw ? '' : '; its bytes are too large to keep here'})`;
    return { tag: r.tag, id: recordId(r), kind: 'malformed', reason, raw };
  }

  private failedJob(err: Error, records: readonly { tag: string; id: string; bytes: Uint8Array }[]): DeadLetter[] {
    this.options.metrics.loopError('encode');
    this.options.logger.error(
      { code: Codes.TRB_EGRESS_ENCODER, err: err.message },
      `Encoding a batch failed (${err.message}); its events go to the dead letters of their sinks.`,
    );
    return records.map((r) => {
      const raw = base64OrEmpty(r.bytes);
      const reason = `the encoder failed on this chunk: ${err.message}${raw ? '' : ' (its bytes are too large to keep here)'}`;
      return { tag: r.tag, id: r.id, kind: 'encoder', reason, raw };
    });
  }

  /**
   * Counts dead letters by kind; the first of each kind since start gets one
   * warn line naming its tag (a sender whose encoding egress refuses shows
   * up once in the log, then in the metric).
   */
  private countDeadLetters(deadLetters: DeadLetter[]): void {
    const byKind = new Map<DeadLetterKind, number>();
    for (const d of deadLetters) {
      byKind.set(d.kind, (byKind.get(d.kind) ?? 0) + 1);
      if (this.warnedKinds.has(d.kind)) continue;
      this.warnedKinds.add(d.kind);
      this.options.logger.warn(
        { code: Codes.TRB_EGRESS_DEAD_LETTER, reason: d.kind, tag: d.tag, id: d.id },
        `An event of tag ${JSON.stringify(d.tag.slice(0, 200))} went to the dead letters (reason ${d.kind}: ${d.reason.slice(0, 300)}); this is the first of reason ${d.kind} since start, later ones are only counted in tributary_egress_dead_letter_events_total{reason="${d.kind}"}.`,
      );
    }
    for (const [kind, n] of byKind) this.options.metrics.deadLetterEvents(kind, n);
  }

  /** Object sinks get one dead-letter object per window; line sinks keep them their own way. */
  private routeDeadLetters(
    w: Window,
    stamp: string,
    deadLetters: DeadLetter[],
    out: (s: Sink) => { objects: Map<string, SinkObject>; lines: LineBatch },
  ): void {
    this.countDeadLetters(deadLetters);
    const perSink = new Map<Sink, DeadLetter[]>();
    for (const d of deadLetters) {
      for (const s of this.sinksFor(d.tag)) {
        const list = perSink.get(s);
        if (list) list.push(d);
        else perSink.set(s, [d]);
      }
    }
    for (const [s, list] of perSink) {
      this.options.metrics.deadLetters(s.name, list.length);
      this.options.logger.warn(
        { code: Codes.TRB_EGRESS_DEAD_LETTER, sink: s.name, events: list.length, first: list[0].reason.slice(0, 300) },
        `${list.length} events could not be encoded for sink ${s.name} and go to its dead letters; the first: ${list[0].reason.slice(0, 300)}.`,
      );
      if (s.kind === 'lines') {
        for (const d of list) out(s).lines.deadLetters.push(d);
        continue;
      }
      const text = list.map((d) => `${JSON.stringify({ reason: d.reason, _id: d.id, _tag: d.tag, msgpack_base64: d.raw })}\n`).join('');
      const path = `_dead_letter/part-${w.partition}-${stamp}.ndjson.gz`;
      out(s).objects.set(path, { path, body: [gzipSync(text, { level: s.gzipLevel })], events: 0 });
    }
  }

  /** Hands a sink its part of a window until it takes it; false when abandoned on stop or the window went stale. */
  private async deliver(w: Window, sink: Sink, objects: Map<string, SinkObject>, lines: LineBatch): Promise<boolean> {
    const events = sink.kind === 'objects' ? [...objects.values()].reduce((n, o) => n + o.events, 0) : lines.events;
    for (let attempt = 0; ; attempt++) {
      if (this.abandoned) return false;
      try {
        if (sink.kind === 'objects') {
          if (objects.size) await (sink as ObjectSink).put([...objects.values()]);
          this.options.metrics.objectWritten(sink.name, objects.size);
        } else if (lines.parts.length || lines.deadLetters.length) await sink.put(lines);
        this.options.metrics.eventsOut(sink.name, events);
        return true;
      } catch (err) {
        const e = err as Error & { code?: string; retriable?: boolean };
        this.options.metrics.sinkFailure(sink.name);
        if (e.retriable === false) {
          this.options.metrics.deadLetters(sink.name, events);
          this.options.logger.error(
            { code: e.code ?? Codes.TRB_SINK_ERROR, sink: sink.name, events },
            `Sink ${sink.name} refused ${events} events for good (${e.message}); they are dropped and egress goes on.`,
          );
          return true;
        }
        this.options.logger.warn(
          { code: e.code ?? Codes.TRB_SINK_ERROR, sink: sink.name, attempt },
          `Sink ${sink.name} did not accept ${events} events (attempt ${attempt + 1}), retrying: ${e.message}`,
        );
        if (this.abandoned) return false;
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.options.backoff)));
        if (this.abandoned || this.stale(w)) return false;
      }
    }
  }

  /**
   * Commits past `w`, retrying until it is saved, egress stops, or the
   * partition is revoked: a commit retried past a revocation would land in
   * the next ownership and could move the group back behind another
   * member's commit (its records are read again from the group's commit).
   */
  private async commit(w: Window): Promise<void> {
    const last: StoredRecord = { tag: '', key: '', count: 0, entries: EMPTY, partition: w.partition, offset: w.last };
    for (let attempt = 0; !this.abandoned && !this.stale(w); attempt++) {
      try {
        await this.options.reader.commit([last]);
        this.failing = null;
        this.options.metrics.committed(w.last);
        return;
      } catch (err) {
        await this.loopFailed('commit', err, attempt);
      }
    }
  }

  private async loopFailed(stage: 'poll' | 'commit', err: unknown, attempt: number): Promise<void> {
    const e = err as Error & { code?: string };
    this.failing = `egress ${stage} failing: ${e.message}`;
    this.options.metrics.loopError(stage);
    this.options.logger.warn(
      { code: e.code ?? Codes.TRB_EGRESS_LOG, stage, attempt },
      `Egress ${stage} failed (attempt ${attempt + 1}), retrying: ${e.message}`,
    );
    await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.options.backoff)));
  }
}

/** Bytes of a tag kept in a path segment (file names stop at 255 bytes). */
const MAX_TAG_SEGMENT = 180;

/**
 * A tag as one path segment: no slashes, no "..", no control characters, at
 * most MAX_TAG_SEGMENT bytes (a longer tag keeps its start and gets a hash of
 * the whole, so distinct tags stay distinct).
 */
export function safeTag(tag: string): string {
  const safe = tag.replace(/[/\\\u0000-\u001f]/g, '_').replace(/^\.+/, '_') || '_';
  if (Buffer.byteLength(safe) <= MAX_TAG_SEGMENT) return safe;
  const head = Buffer.from(safe)
    .subarray(0, MAX_TAG_SEGMENT - 17)
    .toString()
    .replace(/\uFFFD+$/, '');
  return `${head}~${createHash('sha256').update(tag).digest('hex').slice(0, 16)}`;
}

/** The id egress gives a record's events: its chunk key, or where the log keeps it. */
function recordId(r: StoredRecord): string {
  return r.key || `p${r.partition}o${r.offset}`;
}

/** A dead letter's raw bytes in base64, or '' for bytes too large for one string (the caller's reason then says so). */
function base64OrEmpty(bytes: Uint8Array): string {
  try {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  } catch {
    return '';
  }
}

/** The encoder's promise for `job`; an encoder that throws instead of rejecting gives a rejected promise (the job's buffer is still given back). */
function encodeSettled(encoder: Encoder, job: EncodeJob): Promise<EncodeResult> {
  try {
    return encoder.encode(job);
  } catch (err) {
    return Promise.reject(err);
  }
}
