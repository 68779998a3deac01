/**
 * The client chunk ids the forwarder acked, remembered for a bounded window
 * (count and age), so a resend of an acked chunk (its ack was lost, the client
 * sends it again) is acked again without being buffered twice: the
 * aggregators' done marks, one hop earlier.
 *
 * With the disk buffer the ids are kept in a journal beside the chunk files,
 * so a restart remembers them:
 *
 *   journal = record*                       (framing: see records.ts)
 *   payload = JSON { "t": ms acked, "ids": [chunk id, …] }
 *
 * An append's ids are written after its events and before its ack: under
 * `fsync: interval` with them (one sync tick covers both), under `always` only
 * once the events are synced, then synced themselves. A crash can therefore
 * forget an id (the resend is then buffered again: at-least-once) but never
 * keep an id whose events it lost, beyond what the interval policy's window
 * already allows for acked events. Once the journal holds `maxEntries` more ids
 * than it did after its last rewrite, it is rewritten to the ids still
 * remembered (temp file, fdatasync, rename): a short blocking step on the
 * event loop once per `maxEntries` acked chunks.
 */
import { join } from 'node:path';
import { type Filesystem, remainingBuffers } from '@tributary/core';
import { frame, readRecords } from './records';

export interface AckedIdsWindow {
  /** Ids remembered at most; the oldest is forgotten first. */
  maxEntries: number;
  /** How long an id is remembered after its ack (ms). */
  ttlMs: number;
}

export const JOURNAL_FILE = 'acked-chunk-ids.journal';

/** Evicted queue slots kept before the queue is compacted (and at most half of it). */
const COMPACT_AFTER = 4096;

export class AckedChunkIds {
  /**
   * Id → sequence number of its latest record. The records, oldest first,
   * are the queue `ids`/`ats` from `head` on (slot = sequence − `base`); a slot
   * whose id was recorded again later is stale and skipped. Forgetting the
   * oldest is then a step along the queue: evicting through a Map's own order
   * rescans the holes its deletions leave at the front (9.6 µs per record at
   * 50,000 ids).
   */
  private readonly acked = new Map<string, number>();
  private ids: string[] = [];
  private ats: number[] = [];
  /** Sequence number of slot 0. */
  private base = 0;
  private head = 0;

  constructor(
    private readonly window: AckedIdsWindow,
    private readonly journal: IdJournal | null = null,
  ) {}

  /** Memory only (the memory buffer: a restart loses the events anyway). */
  static inMemory(window: AckedIdsWindow): AckedChunkIds {
    return new AckedChunkIds(window);
  }

  /** Loads the journal in `dir` (keeping the ids still in the window) and opens it for appends. */
  static async open(fs: Filesystem, dir: string, window: AckedIdsWindow, now = Date.now()): Promise<AckedChunkIds> {
    const path = join(dir, JOURNAL_FILE);
    let data: Buffer;
    try {
      data = await fs.readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      data = Buffer.alloc(0);
    }
    const { payloads, goodLength } = readRecords(data);
    if (goodLength < data.length) await fs.truncate(path, goodLength);
    const journal = new IdJournal(fs, path, await fs.open(path, 'a'), goodLength, (e) => ids.onError?.(e));
    const ids: AckedChunkIds = new AckedChunkIds(window, journal);
    for (const p of payloads) {
      let rec: { t: number; ids: string[] };
      try {
        rec = JSON.parse(p.toString('utf8'));
      } catch {
        continue;
      }
      if (!Array.isArray(rec.ids)) continue;
      journal.appended += rec.ids.length;
      if (typeof rec.t === 'number' && rec.t + window.ttlMs > now) ids.remember(rec.ids, rec.t);
    }
    return ids;
  }

  get size(): number {
    return this.acked.size;
  }

  /** The journal's descriptor, for the buffer's syncs (null in memory). */
  get fd(): number | null {
    return this.journal?.fd ?? null;
  }

  /** True when `id` was acked within the window. */
  has(id: string, now = Date.now()): boolean {
    const seq = this.acked.get(id);
    return seq !== undefined && this.ats[seq - this.base] + this.window.ttlMs > now;
  }

  /** The remembered ids with when each was acked, oldest first. */
  *entries(): IterableIterator<[string, number]> {
    for (let i = this.head; i < this.ids.length; i++) {
      const id = this.ids[i];
      if (this.acked.get(id) === this.base + i) yield [id, this.ats[i]];
    }
  }

  /**
   * Records ids about to be acked: written to the journal (page cache), then
   * remembered. Throws, remembering nothing and leaving no partial record,
   * when the write fails. Returns the journal descriptor it replaced by a
   * rewrite (the caller closes it once its syncs are done), or null.
   */
  record(ids: string[], now = Date.now()): number | null {
    if (!ids.length || this.window.maxEntries === 0) return null;
    this.journal?.append(ids, now);
    this.remember(ids, now);
    if (!this.journal?.due(this.window.maxEntries)) return null;
    try {
      return this.journal.rewrite(this.entries(), this.window.ttlMs, now);
    } catch (err) {
      // The old journal still holds every id; the next record tries again.
      this.onError?.(err as NodeJS.ErrnoException);
      return null;
    }
  }

  /** Observer for journal failures that do not refuse the append (a rewrite, cutting off a torn record): the owner logs and counts. */
  onError?: (err: NodeJS.ErrnoException) => void;

  /** Closes the journal of an instance used on its own (the disk buffer closes it through its syncs). */
  closeSync(): void {
    this.journal?.closeSync();
  }

  private remember(ids: string[], at: number): void {
    for (const id of ids) {
      this.acked.set(id, this.base + this.ids.length);
      this.ids.push(id);
      this.ats.push(at);
    }
    const cutoff = at - this.window.ttlMs;
    while (this.head < this.ids.length) {
      const id = this.ids[this.head];
      if (this.acked.get(id) === this.base + this.head) {
        if (this.acked.size <= this.window.maxEntries && this.ats[this.head] > cutoff) break;
        this.acked.delete(id);
      }
      this.head++;
    }
    if (this.head > COMPACT_AFTER && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.ats = this.ats.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}

class IdJournal {
  /** Ids in the journal file, remembered or not (a rewrite keeps only the remembered ones). */
  appended = 0;

  constructor(
    private readonly fs: Filesystem,
    private readonly path: string,
    public fd: number,
    /** Bytes in the journal: where a failed append is cut back to. */
    private size: number,
    private readonly report: (err: NodeJS.ErrnoException) => void,
  ) {}

  append(ids: string[], now: number): void {
    const buffers = frame([Buffer.from(JSON.stringify({ t: now, ids }))]);
    const total = buffers.reduce((n, b) => n + b.length, 0);
    let written = 0;
    try {
      while (written < total) written += this.fs.writevSync(this.fd, written === 0 ? buffers : remainingBuffers(buffers, written));
    } catch (err) {
      // A torn record would hide every later one from the next start: cut it off. Should even that fail,
      // the next start stops reading there: ids after it are forgotten, so their resends are buffered again.
      if (written > 0) {
        try {
          this.fs.ftruncateSync(this.fd, this.size);
        } catch (cutErr) {
          this.report(cutErr as NodeJS.ErrnoException);
        }
      }
      throw err;
    }
    this.size += total;
    this.appended += ids.length;
  }

  due(maxEntries: number): boolean {
    return this.appended > maxEntries;
  }

  /** Replaces the journal by the ids still in the window; returns the old descriptor. */
  rewrite(acked: Iterable<[string, number]>, ttlMs: number, now: number): number {
    const byTime = new Map<number, string[]>();
    for (const [id, t] of acked) {
      if (t + ttlMs <= now) continue;
      const list = byTime.get(t);
      if (list) list.push(id);
      else byTime.set(t, [id]);
    }
    const buffers: Buffer[] = [];
    for (const [t, ids] of byTime) buffers.push(...frame([Buffer.from(JSON.stringify({ t, ids }))]));
    const tmp = `${this.path}.tmp`;
    const fd = this.fs.openSync(tmp, 'w');
    try {
      const total = buffers.reduce((n, b) => n + b.length, 0);
      let written = 0;
      while (written < total) written += this.fs.writevSync(fd, written === 0 ? buffers : remainingBuffers(buffers, written));
      this.fs.fdatasyncSync(fd);
      this.fs.renameSync(tmp, this.path);
    } catch (err) {
      try {
        this.fs.closeSync(fd);
      } catch {
        // the rewrite's own error is the one reported
      }
      throw err;
    }
    const old = this.fd;
    this.fd = fd;
    this.size = buffers.reduce((n, b) => n + b.length, 0);
    this.appended = 0;
    return old;
  }

  closeSync(): void {
    this.fs.closeSync(this.fd);
  }
}
