/**
 * The position journal: where each followed file was read to, and which
 * range of it is being handed to the buffer.
 *
 *   journal = line*        line = JSON Position (or { "id", "gone": true }), '\n'
 *
 * Before a batch is handed to the buffer, each file's record says `pos` (all
 * before it is in the buffer) and `end` (the batch covers [pos, end)), and
 * the batch's chunk for that file carries the id `tail:<id>:<pos>-<end>`.
 * Once `consume` resolved, a record with `pos = end` follows. After a crash
 * (kill -9) the last record of a file decides where reading resumes:
 *   - pos = end: from pos;
 *   - pos < end: exactly [pos, end) is read again under the same chunk id,
 *     and the buffer's memory of acked chunk ids tells whether it was
 *     already accepted: skipped if so. The buffer writes a batch's chunk ids
 *     in the same write as its events (an id record after them in the chunk
 *     file), so a crash before its id journal's write still finds them.
 * So a line is neither lost nor repeated, whichever instruction the crash
 * stopped at. Records are written (not synced) before the buffer's write:
 * a process crash keeps them (page cache); a power loss may lose the last
 * ones, and the lines after the surviving position are read again.
 *
 * The last line may be torn by a crash: it is ignored. Once the journal holds
 * `COMPACT_AFTER_BYTES` and four times more than its live records, it is
 * rewritten to the live records (temp file, fdatasync, rename).
 *
 * A close that fails after the step's outcome is decided (the temp file's
 * after a failed write, the old journal's after the rename) is not thrown:
 * it goes to the journal's `report`, and the step's own error, if any, is the
 * one thrown.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Filesystem, realFilesystem, writevAllSync } from '@tributary/core';

/** A close that failed without deciding the outcome of its step, and a sentence on its effect: the owner logs and counts it. */
export type PositionsErrorReport = (err: NodeJS.ErrnoException, what: string) => void;

export interface Position {
  /** Random id given when the file was first seen; part of its chunk ids. */
  id: string;
  dev: number;
  ino: number;
  /** Fingerprint: how many first bytes were hashed, and their hash. */
  fpLen: number;
  fpHash: string;
  /** The path the file had when first seen (its tag and `path_key` come from it, whatever it is renamed to). */
  path: string;
  /** Everything before this offset is in the buffer. */
  pos: number;
  /** The batch being handed over covers [pos, end); equal to pos when none is. */
  end: number;
  /** `pos` is inside an over-long line being skipped up to its newline. */
  skipping?: boolean;
  /** When a glob last matched the file (ms). */
  seenAt: number;
}

const COMPACT_AFTER_BYTES = 1 << 20;

export class PositionJournal {
  /**
   * Whole lines dropped at open: the first that did not parse and every line
   * after it (a torn last line, from a crash mid-write, is not counted).
   * Their files are read again from the position before.
   */
  readonly corruptLines: number;
  private readonly live = new Map<string, Position>();
  private fd: number;
  private size: number;

  private constructor(
    private readonly path: string,
    data: Buffer,
    private readonly report: PositionsErrorReport,
    private readonly fs: Filesystem,
  ) {
    let good = 0;
    let start = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
      try {
        const rec = JSON.parse(data.toString('utf8', start, nl)) as Position & { gone?: boolean };
        if (rec.gone) this.live.delete(rec.id);
        else this.live.set(rec.id, rec);
        good = nl + 1;
      } catch {
        break; // a torn or corrupt line ends what the journal holds
      }
      start = nl + 1;
    }
    this.size = good;
    let corrupt = 0;
    for (let nl = data.indexOf(10, good); nl >= 0; nl = data.indexOf(10, nl + 1)) corrupt++;
    this.corruptLines = corrupt;
    this.fd = fs.openSync(path, 'a');
    if (good < data.length) {
      try {
        this.compact();
      } catch (err) {
        this.closeReporting(this.fd, 'The position journal could not be closed after its open failed; the open fails with its own error.');
        throw err;
      }
    }
  }

  /** Loads the journal at `path` (created if missing, with its directory); closes that fail without failing a step go to `report`. */
  static open(path: string, report: PositionsErrorReport, fs: Filesystem = realFilesystem): PositionJournal {
    mkdirSync(dirname(path), { recursive: true });
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      data = Buffer.alloc(0);
    }
    return new PositionJournal(path, data, report, fs);
  }

  /** The saved positions, by file id. */
  positions(): IterableIterator<Position> {
    return this.live.values();
  }

  /** Appends the records (one write) and keeps them as the files' latest; throws when the write failed. */
  write(records: readonly Position[]): void {
    if (!records.length) return;
    const text = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    writevAllSync(this.fs, this.fd, [text], text.length);
    this.size += text.length;
    for (const r of records) this.live.set(r.id, { ...r });
    this.compactIfDue();
  }

  /** Forgets files (their positions are dropped for good). */
  forget(ids: readonly string[]): void {
    if (!ids.length) return;
    const text = Buffer.from(ids.map((id) => `${JSON.stringify({ id, gone: true })}\n`).join(''));
    writevAllSync(this.fs, this.fd, [text], text.length);
    this.size += text.length;
    for (const id of ids) this.live.delete(id);
    this.compactIfDue();
  }

  close(): void {
    this.fs.closeSync(this.fd);
  }

  private compactIfDue(): void {
    if (this.size < COMPACT_AFTER_BYTES || this.size < 4 * this.live.size * 200) return;
    this.compact();
  }

  private compact(): void {
    const text = Buffer.from([...this.live.values()].map((r) => `${JSON.stringify(r)}\n`).join(''));
    const tmp = `${this.path}.tmp`;
    const fd = this.fs.openSync(tmp, 'w');
    try {
      writevAllSync(this.fs, fd, [text], text.length);
      this.fs.fdatasyncSync(fd);
      this.fs.renameSync(tmp, this.path);
    } catch (err) {
      this.closeReporting(
        fd,
        'The temporary position journal could not be closed after its write failed; the step fails with its own error.',
      );
      throw err;
    }
    const old = this.fd;
    this.fd = fd;
    this.size = text.length;
    this.closeReporting(old, 'The position journal replaced by its compacted copy could not be closed; the copy takes the records.');
  }

  private closeReporting(fd: number, what: string): void {
    try {
      this.fs.closeSync(fd);
    } catch (err) {
      this.report(err as NodeJS.ErrnoException, what);
    }
  }
}
