/**
 * The Kafka log's reader: a kafkajs consumer group member whose `eachBatch`
 * feeds a bounded in-memory queue that `poll` drains.
 *
 * What kafkajs does (2.2.4, src/consumer/runner.js, consumerGroup.js,
 * offsetManager/index.js), and what follows from it here:
 * - The next fetch of a partition starts at its *resolved* offset, an
 *   in-memory position that only `resolveOffset` moves (with
 *   `eachBatchAutoResolve: false`). A batch whose offsets are not resolved is
 *   fetched again as soon as the handler returns, whatever was committed. So
 *   `eachBatch` resolves each record as it hands it to the queue (or drops it,
 *   below), and returns: the batch is over, its timers with it.
 * - Batches of all partitions go through one handler at a time
 *   (`partitionsConsumedConcurrently` 1). When the queue is full, `eachBatch`
 *   waits for room, calling `heartbeat()` at least every HEARTBEAT_SLICE_MS
 *   (kafkajs sends one only when its own interval has passed). It stops
 *   waiting and returns, leaving the rest unresolved (fetched again later),
 *   when `isRunning()` turns false, `isStale()` (a seek) turns true or the
 *   reader closes; a heartbeat that fails (REBALANCE_IN_PROGRESS, …) is
 *   rethrown, which is how kafkajs learns it must rejoin the group.
 * - A rebalance makes a new OffsetManager that starts every partition again
 *   from the group's *committed* offset. The reader keeps, per partition, the
 *   next offset it expects (one past the last record it queued); a record
 *   below it was already queued, handed to `poll` or committed by this
 *   process, and is dropped (and resolved). So a record is handed to `poll`
 *   at most once per process, and nothing is skipped: the expected offset only
 *   moves past records that went into the queue.
 * - Assignments arrive with the GROUP_JOIN event (emitted after the new
 *   OffsetManager exists, before the next fetch). Partitions no longer
 *   assigned are revoked: their queued records are dropped and their state
 *   forgotten; the new owner reads them again from the group's last commit.
 *   If that owner is this member again, its records come again from that
 *   commit, including ones already handed to `poll`: so the poll that takes
 *   the first records after a revocation reports it (`revoked()`), and the
 *   caller drops what it holds of the partition uncommitted before adding
 *   them. Records queued before the revocation are dropped with it, so no
 *   poll mixes records from before and after one.
 * - `consumer.commitOffsets` goes through the runner's retrier; it returns
 *   WITHOUT committing when the runner is not running, and a commit during a
 *   rebalance fails with REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION (not
 *   retried by kafkajs). Brokers (2.1 included) check only the member and
 *   generation of an OffsetCommit, never who owns the partition. Hence
 *   `commit` here: while the group is rebalancing or the consumer is stopped
 *   (between CRASH/STOP and the next GROUP_JOIN), or when kafkajs fails, it
 *   rejects with a RetryableError (egress backs off and calls it again); once
 *   the assignment is known, partitions this member no longer owns are left
 *   out (logged: their new owner replays them from the group's last commit,
 *   at least once) and the others are committed. Within one ownership of a
 *   partition a commit never moves it backwards; egress gives up a commit it
 *   is still retrying once it learns the partition was revoked, so a commit
 *   of an earlier ownership does not land in the next.
 * - `caughtUp()` holds only when the queue is empty, the member is running
 *   with a known assignment, and every assigned partition's next offset has
 *   reached its high watermark as last seen: from the last batch
 *   (`batch.highWatermark`) or, for a partition that has delivered nothing
 *   (kafkajs never calls `eachBatch` for an empty fetch), from the group's
 *   committed offset and the partition's end, asked with the admin client
 *   in the background (at most once a second) when a poll leaves the queue
 *   empty. Unknown means false, and so does a partition no longer assigned
 *   (it is not read to its end here; egress drops what it holds of it).
 * - Values (kafka/value-codec.ts) are handed on as stored: a gzip value in
 *   `gzipped` (egress inflates it on its encoder threads), copied out of the
 *   fetch buffer, so a queued record never holds a whole fetch response; the
 *   queue lets go of a record as soon as a poll takes it, and counts and
 *   bounds records by their inflated size (`entriesBytes`). A value whose
 *   codec this version does not read is queued as an `unreadable` record (its
 *   stored bytes, a coded error line): egress dead-letters it whole and goes
 *   on, and the offset is committed past.
 */
import { Codes, type Logger, RetryableError, entriesBytes } from '@tributary/core';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { LogErrorCode, type LogReader, type StoredRecord } from '../durable-log';
import { CODEC_HEADER, readValue } from './value-codec';

/** How often a batch waiting for queue room offers kafkajs a heartbeat (kafkajs's own heartbeatInterval defaults to 3 s). */
export const HEARTBEAT_SLICE_MS = 1000;
/** Bytes counted per queued record beyond its entries (fields, headers). */
const RECORD_OVERHEAD_BYTES = 128;
/**
 * Most entries bytes one poll hands out (but always at least one record):
 * a poll's records stay valid until the next poll, and egress copies them
 * all into its encoding jobs (of 2 MiB each) before it polls again. 256
 * records of 1,000-event chunks made 50 MiB polls. The embedded reader
 * bounds its polls the same way (READ_BYTES).
 */
const MAX_POLL_BYTES = 8 * 1024 * 1024;
/** Least time between two admin look-ups of partitions that delivered nothing yet. */
const WATERMARK_REFRESH_MS = 1000;

/** The part of a kafkajs Consumer the reader uses (subscribed and connected by the caller). */
export type ReaderConsumer = Pick<Consumer, 'run' | 'commitOffsets' | 'on' | 'events' | 'disconnect'>;

/** Per partition: where the group's committed offset is and where the partition ends (admin look-up). */
export type PartitionEnds = () => Promise<Array<{ partition: number; committed: number; low: number; high: number }>>;

export interface KafkaReaderOptions {
  consumer: ReaderConsumer;
  topic: string;
  /** Most bytes of fetched records held for `poll`; `eachBatch` waits while it is full. */
  maxQueuedBytes: number;
  partitionEnds: PartitionEnds;
  logger: Logger;
}

interface PartitionState {
  /** One past the last record queued by this process; -1 until known. */
  next: number;
  /** One past the last offset this process committed; -1 until it commits. */
  committed: number;
  /** High watermark as last seen; -1 until known. */
  high: number;
  /** When (this node's clock) `high` was last learned; -1 until known. */
  highAt: number;
}

export const KafkaReaderCode = {
  Rebalancing: Codes.TRB_LOG_REBALANCING,
  Commit: Codes.TRB_LOG_COMMIT,
  Revoked: Codes.TRB_LOG_REVOKED,
  Ends: Codes.TRB_LOG_ENDS,
  Crash: Codes.TRB_LOG_CONSUMER_CRASH,
} as const;

export class KafkaReader implements LogReader {
  private readonly states = new Map<number, PartitionState>();
  private assigned: Set<number> | null = null;
  private running = false;
  private closed = false;
  /** Why the consumer is gone for good (kafkajs will not restart it); polls then fail with it. */
  private dead: string | null = null;
  /** Records fetched and not yet polled, from `head` on; a polled slot is emptied at once (its entries are then garbage). */
  private queue: Array<StoredRecord | undefined> = [];
  private head = 0;
  private queuedBytes = 0;
  private arrivals: Array<() => void> = [];
  private rooms: Array<() => void> = [];
  private lastEndsLookup = 0;
  /** `caughtUp` was asked about the partition's end as of this time (ms) or later: a look-up refreshes it. */
  private endsWantedSince = new Map<number, number>();
  private endsLookup: Promise<void> | null = null;
  private endsLookupTimer: NodeJS.Timeout | null = null;
  /** Partitions revoked since the last poll took its records. */
  private revokedSincePoll: number[] = [];
  /** What the last poll took of `revokedSincePoll`. */
  private revokedAtPoll: readonly number[] = [];

  constructor(private readonly options: KafkaReaderOptions) {}

  async start(): Promise<void> {
    const { consumer, logger, topic } = this.options;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment[topic] ?? []));
    consumer.on(consumer.events.REBALANCING, () => {
      this.running = false;
    });
    consumer.on(consumer.events.STOP, () => {
      this.running = false;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.running = false;
      if (!e.payload.restart) this.dead = `its consumer crashed and kafkajs does not restart it (${e.payload.error.message})`;
      logger.error(
        { code: KafkaReaderCode.Crash, restart: e.payload.restart },
        `The Kafka consumer of topic ${topic} crashed (${e.payload.error.message}); ${
          e.payload.restart ? 'kafkajs restarts it' : 'kafkajs does not restart it, egress gets nothing until a restart'
        }.`,
      );
    });
    // kafkajs's run() resolves once this member has joined the group, and a join waits for every member the
    // group had to rejoin or time out: after a kill -9 of one, its session (30 s). The node starts without
    // waiting (ingest and /metrics do not need the group); poll, caughtUp and commit wait for the assignment.
    consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) }).catch((err: Error) => {
      this.dead = `its consumer could not start (${err.message})`;
      logger.error(
        { code: KafkaReaderCode.Crash, err: err.message },
        `The Kafka consumer of topic ${topic} could not start (${err.message}); egress gets nothing until a restart.`,
      );
    });
  }

  /**
   * Waits (up to `maxWaitMs`) only while nothing is queued, and returns early
   * when records arrive or when what `caughtUp` answers may have changed (a
   * batch, an assignment, a look-up of partition ends): a caller that waits
   * for `caughtUp` polls again rather than spinning.
   */
  async poll(maxRecords: number, maxWaitMs: number): Promise<StoredRecord[]> {
    if (this.closed) {
      this.takeRevoked(); // a poll that takes nothing reports nothing it reported before
      return [];
    }
    if (this.dead) {
      // Egress counts it, logs it and shows it in /readyz, and backs off: records would never come.
      throw new RetryableError(
        KafkaReaderCode.Crash,
        `The reader of Kafka topic ${this.options.topic} gets nothing: ${this.dead}; restart the node.`,
      );
    }
    if (this.queued() === 0 && maxWaitMs > 0) await this.waitFor(this.arrivals, maxWaitMs);
    // Taken together with the records, after any wait: a revocation while the poll waited is reported with
    // the records that follow it, never after them.
    this.takeRevoked();
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (const end = Math.min(maxRecords, this.queued()); out.length < end; ) {
      const r = this.queue[this.head] as StoredRecord;
      bytes += entriesBytes(r);
      if (out.length > 0 && bytes > MAX_POLL_BYTES) break;
      out.push(r);
      this.queue[this.head++] = undefined;
      this.queuedBytes -= recordBytes(r);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.lookUpEnds();
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    wake(this.rooms);
    return out;
  }

  revoked(): readonly number[] {
    return this.revokedAtPoll;
  }

  private takeRevoked(): void {
    if (this.revokedAtPoll.length === 0 && this.revokedSincePoll.length === 0) return;
    this.revokedAtPoll = this.revokedSincePoll;
    this.revokedSincePoll = [];
  }

  caughtUp(partition?: number, since = 0): boolean {
    if (!this.running || !this.assigned) return false;
    if (partition === undefined) return this.queued() === 0 && [...this.assigned].every((p) => this.partitionAtEnd(p, since));
    // A partition this member no longer holds is not read to its end here: its new owner reads it.
    if (!this.assigned.has(partition)) return false;
    for (let i = this.head; i < this.queue.length; i++) if (this.queue[i]?.partition === partition) return false;
    return this.partitionAtEnd(partition, since);
  }

  /**
   * At the high watermark, learned at `since` or later. When it was learned
   * earlier (kafkajs reports no empty fetch, so a quiet partition's stays
   * old), a look-up in the background learns it again and wakes a poll.
   */
  private partitionAtEnd(partition: number, since: number): boolean {
    const s = this.states.get(partition);
    if (s === undefined || s.next < 0 || s.high < 0 || s.next < s.high) return false;
    if (s.highAt >= since) return true;
    this.endsWantedSince.set(partition, Math.max(since, this.endsWantedSince.get(partition) ?? 0));
    this.lookUpEnds();
    return false;
  }

  async commit(records: StoredRecord[]): Promise<void> {
    if (records.length === 0) return;
    const { topic, consumer, logger } = this.options;
    if (this.closed) throw new RetryableError(LogErrorCode.Closed, `The reader of Kafka topic ${topic} is closed.`);
    if (!this.running || !this.assigned) {
      throw new RetryableError(
        KafkaReaderCode.Rebalancing,
        `The consumer group of Kafka topic ${topic} is rebalancing or restarting; the commit is retried once it has its partitions.`,
      );
    }
    const ends = new Map<number, number>();
    for (const r of records) ends.set(r.partition, Math.max(ends.get(r.partition) ?? 0, r.offset + 1));
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    for (const [partition, offset] of ends) {
      const state = this.assigned.has(partition) ? this.states.get(partition) : undefined;
      if (!state) {
        logger.warn(
          { code: KafkaReaderCode.Revoked, partition, offset },
          `Partition ${partition} of Kafka topic ${topic} was reassigned before its commit up to offset ${offset}; its new owner replays it from the group's last commit.`,
        );
      } else if (offset > state.committed) {
        offsets.push({ topic, partition, offset: String(offset) });
      }
    }
    if (offsets.length === 0) return;
    try {
      await consumer.commitOffsets(offsets);
    } catch (err) {
      throw new RetryableError(
        KafkaReaderCode.Commit,
        `Committing Kafka topic ${topic} failed (${(err as Error).message}); egress retries.`,
        err,
      );
    }
    for (const o of offsets) {
      const state = this.states.get(o.partition);
      if (state) state.committed = Math.max(state.committed, Number(o.offset));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.endsLookupTimer) clearTimeout(this.endsLookupTimer);
    wake(this.arrivals);
    wake(this.rooms);
    await this.options.consumer.disconnect();
  }

  private queued(): number {
    return this.queue.length - this.head;
  }

  private onAssignment(partitions: number[]): void {
    const now = new Set(partitions);
    const revoked = [...this.states.keys()].filter((p) => !now.has(p));
    if (revoked.length) {
      const gone = new Set(revoked);
      for (const p of revoked) {
        this.states.delete(p);
        if (!this.revokedSincePoll.includes(p)) this.revokedSincePoll.push(p);
      }
      const kept = this.queue.slice(this.head).filter((r): r is StoredRecord => r !== undefined && !gone.has(r.partition));
      const dropped = this.queued() - kept.length;
      this.queue = kept;
      this.head = 0;
      this.queuedBytes = kept.reduce((n, r) => n + recordBytes(r), 0);
      this.options.logger.info(
        { code: KafkaReaderCode.Revoked, revoked, dropped },
        `Partitions ${revoked.join(', ')} of Kafka topic ${this.options.topic} were revoked; ${dropped} queued records of theirs were dropped (their new owner reads them).`,
      );
    }
    for (const p of now) if (!this.states.has(p)) this.states.set(p, { next: -1, committed: -1, high: -1, highAt: -1 });
    for (const p of this.endsWantedSince.keys()) if (!now.has(p)) this.endsWantedSince.delete(p);
    this.assigned = now;
    this.running = true;
    this.lastEndsLookup = 0;
    wake(this.rooms);
    wake(this.arrivals); // caughtUp may have changed: a waiting poll returns so its caller looks again
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const partition = batch.partition;
    let state = this.states.get(partition);
    if (!state) {
      state = { next: -1, committed: -1, high: -1, highAt: -1 };
      this.states.set(partition, state);
    }
    state.high = Number(batch.highWatermark);
    state.highAt = Date.now();
    let queuedAny = false;
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset < state.next) {
        resolveOffset(m.offset); // already queued, handed to poll or committed by this process
        continue;
      }
      const record = this.toRecord(m, partition);
      const bytes = recordBytes(record);
      while (this.queued() > 0 && this.queuedBytes + bytes > this.options.maxQueuedBytes) {
        if (queuedAny) wake(this.arrivals);
        if (this.closed || !isRunning() || isStale() || this.states.get(partition) !== state) return;
        await this.waitFor(this.rooms, HEARTBEAT_SLICE_MS);
        await heartbeat();
      }
      if (this.closed || !isRunning() || isStale() || this.states.get(partition) !== state) return;
      this.queue.push(record);
      this.queuedBytes += bytes;
      state.next = offset + 1;
      queuedAny = true;
      resolveOffset(m.offset);
    }
    // Records, or only a newer high watermark: either may make caughtUp hold, so a waiting poll returns.
    wake(this.arrivals);
  }

  /** The record a message holds; a value this version cannot read makes an `unreadable` record, said here. Never throws. */
  private toRecord(m: KafkaMessage, partition: number): StoredRecord {
    const appendedAt = Number(m.timestamp);
    const record: StoredRecord = {
      tag: m.headers?.tag?.toString() ?? '',
      key: m.headers?.key?.toString() ?? '',
      count: Number(m.headers?.count?.toString() ?? '0'),
      entries: EMPTY,
      partition,
      offset: Number(m.offset),
      // The broker's append time on a LogAppendTime topic (KafkaLog creates it so); a record without one is cut in egress's time.
      ...(Number.isFinite(appendedAt) && appendedAt > 0 ? { appendedAt } : {}),
    };
    try {
      const value = readValue(m.value, m.headers?.[CODEC_HEADER]?.toString());
      record.entries = value.entries;
      if (value.gzipped) record.gzipped = value.gzipped;
    } catch (err) {
      record.entries = m.value ? Buffer.from(m.value) : EMPTY;
      record.unreadable = `Kafka topic ${this.options.topic} partition ${partition} offset ${m.offset} cannot be read: ${(err as Error).message}`;
      this.options.logger.error(
        { code: LogErrorCode.Corrupt, partition, offset: m.offset, tag: record.tag },
        `${record.unreadable}; its ${record.count} events go to dead letters with the stored bytes.`,
      );
    }
    return record;
  }

  /**
   * Learns, in the background, where partitions stand that delivered nothing
   * yet, or whose high watermark `caughtUp` was asked about as of a time after
   * it was learned; a poll never waits for it (the admin client retries for a
   * long time while brokers are down), but returns when it is done. At most
   * one look-up a WATERMARK_REFRESH_MS; the answer is used only if the
   * assignment did not change meanwhile.
   */
  private lookUpEnds(): void {
    if (this.endsLookup || this.closed || !this.assigned) return;
    const assigned = this.assigned;
    const stale = [...assigned].filter((p) => {
      const s = this.states.get(p);
      return !s || s.next < 0 || s.high < 0 || s.highAt < (this.endsWantedSince.get(p) ?? -1);
    });
    if (stale.length === 0) return;
    const started = Date.now();
    if (started - this.lastEndsLookup < WATERMARK_REFRESH_MS) {
      // Asked again too soon: look once the interval is over (a poll waiting meanwhile is woken then).
      this.endsLookupTimer ??= setTimeout(
        () => {
          this.endsLookupTimer = null;
          this.lookUpEnds();
        },
        this.lastEndsLookup + WATERMARK_REFRESH_MS - started,
      ).unref();
      return;
    }
    this.lastEndsLookup = started;
    this.endsLookup = (async () => {
      try {
        const ends = await this.options.partitionEnds();
        if (this.assigned !== assigned) return;
        for (const e of ends) {
          const s = this.states.get(e.partition);
          if (!s || !stale.includes(e.partition)) continue;
          // A batch may have arrived during the look-up: it knows better. A high watermark only grows.
          if (s.next < 0) s.next = e.committed >= 0 ? e.committed : e.low;
          s.high = Math.max(s.high, e.high);
          s.highAt = Math.max(s.highAt, started);
          if (s.highAt >= (this.endsWantedSince.get(e.partition) ?? 0)) this.endsWantedSince.delete(e.partition);
        }
        wake(this.arrivals);
      } catch (err) {
        if (!this.closed) {
          this.options.logger.warn(
            { code: KafkaReaderCode.Ends },
            `Looking up the ends of Kafka topic ${this.options.topic} failed (${(err as Error).message}); the reader does not report itself caught up until it succeeds.`,
          );
        }
      } finally {
        this.endsLookup = null;
      }
    })();
  }

  private waitFor(list: Array<() => void>, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, ms);
      list.push(done);
    });
  }
}

const EMPTY = Buffer.alloc(0);

function wake(list: Array<() => void>): void {
  for (const w of list.splice(0)) w();
}

/** A queued record's weight: its entries as egress will hold them inflated, plus its fields. */
function recordBytes(r: StoredRecord): number {
  return entriesBytes(r) + r.key.length + r.tag.length + RECORD_OVERHEAD_BYTES;
}
