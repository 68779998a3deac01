/**
 * The tail input: follows the files its globs match, hands their lines to
 * the next stage in batches, and advances each file's position only once
 * `consume` resolved (positions.ts says how a crash at any point neither
 * loses nor repeats a line).
 *
 * One loop, never two batches at once (backpressure: nothing more is read
 * while `consume` is pending):
 *   - every `refresh_interval_ms` the globs are expanded; a file is known by
 *     device, inode and a fingerprint of its first bytes, so a file renamed
 *     to another matched name (`app.log` → `app.log.1` under `app.log*`) is
 *     the same file and is not read twice, and a reused inode is a new file;
 *   - each round reads, from every file with new bytes, at most one bounded
 *     read (memory: one read buffer and at most BATCH_BYTES of encoded
 *     events, whatever the number or size of the files);
 *   - a file whose path now names another file or none (rename rotation,
 *     delete) is read for `rotate_wait_ms` more, then closed once read to
 *     its end; a deleted one as soon as it is read to its end; a file that
 *     shrank below its position (copytruncate) is read again from 0.
 *
 * A round's fstat and read of a file are synchronous and bounded (one read
 * of at most 1 MiB, ~0.1 ms from the page cache): asynchronous ones cost 60 %
 * more CPU per line (1.24 vs 0.75 CPU s per million 200-byte lines) and wait
 * in libuv's 4-thread pool behind the disk buffer's fdatasyncs.
 *
 * Every failure is the loop's: a file that cannot be read, a position that
 * cannot be written or a batch the buffer refused is logged with its code,
 * counted, and retried after a backoff; the loop never ends but on `stop`.
 */
import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { type Stats, close, fstat, fstatSync, open, read, readSync, readdir, stat } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Codes, type ErrorCode, LogLimiter, backoffDelay, isErrorCode } from '@tributary/core';
import {
  EVENT_TIME_BYTES,
  EventTime,
  type ForwardChunk,
  encodeEntry,
  isRecordRefusal,
  strHeader,
  writeEventTime,
} from '@tributary/forward-protocol';
import { glob } from 'tinyglobby';
import type { Consume, Input, InputContext } from '../input';
import { consumeInPieces } from '../pieces';
import type { TailInputConfig } from './config';
import { JsonTranscoder } from './json-msgpack';
import { type TailMetrics, createTailMetrics } from './metrics';
import { type Group, type Grouper, createGrouper } from './multiline';
import { type Parser, createParser } from './parsers';
import { type Position, PositionJournal } from './positions';

const openFile = promisify(open);
const fstatFd = promisify(fstat);
/** `stat` looked up at each call (not bound at load), so a test can make it fail. */
const statPath = (path: string): Promise<Stats> => promisify(stat)(path);
const closeFd = promisify(close);
const readFd = promisify(read);
const listDir = promisify(readdir);

/** True when a stat or listing failed because the path is no longer there (not for EACCES, EIO and the like). */
function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Bytes read from one file per round, at most (at least one longest line and its newline). */
const READ_BYTES = 1024 * 1024;
/** Encoded event bytes gathered from all files before one `consume`. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** How many first bytes of a file identify it, with its device and inode. */
const FINGERPRINT_BYTES = 256;
const RETRY = { initialMs: 100, maxMs: 5000 };
/**
 * An idle file's path is stat-ed this often at most to notice a rename (a stat
 * per file per poll would cost thousands of stats a second with thousands of
 * idle files); the renamed file is read through its descriptor meanwhile.
 */
const ROTATION_CHECK_MS = 1000;
/** The fingerprint of no bytes. */
const EMPTY_HASH = createHash('sha1').digest('hex').slice(0, 16);

/** A file being followed. */
interface Followed {
  fd: number;
  key: string;
  /** The durable state: `pos` is in the buffer. */
  position: Position;
  tag: string;
  /** Where the next read starts: after the last complete line looked at. */
  readPos: number;
  /** Up to where the file was looked at (a partial last line lies in [readPos, seenTo)). */
  seenTo: number;
  /** Inside an over-long line, dropping bytes up to its newline. */
  skipping: boolean;
  /** After a restart: the range [pos, pendingEnd) is read again as it was handed over, to be recognised. */
  pendingEnd: number | null;
  /** The path it is matched under now; null once renamed away or deleted. */
  pathNow: string | null;
  goneAt: number | null;
  deleted: boolean;
  size: number;
  lastDataAt: number;
  checkedAt: number;
  grouper: Grouper | null;
  /** The fast path's bytes after the message (the `path_key` pair), or null without one. */
  pathKeyBytes: Buffer | null;
}

/** What one round takes from one file. */
interface Part {
  file: Followed;
  chunk: ForwardChunk | null;
  /** The position once the batch is accepted. */
  pos: number;
  readPos: number;
  seenTo: number;
  skipping: boolean;
  bytes: number;
  /** The file is closed once the batch is accepted. */
  close: boolean;
}

/** The tail input; it starts following once started. */
export function createTailInput(config: TailInputConfig, ctx: InputContext): Input {
  let tailer: Tailer | null = null;
  return {
    name: 'tail',
    get address(): never {
      throw new Error('The tail input listens on no address; it reads files.');
    },
    async start(consume) {
      tailer = new Tailer(config, ctx, consume);
      await tailer.start();
    },
    async stop(graceMs) {
      await tailer?.stop(graceMs);
    },
  };
}

class Tailer {
  private readonly files = new Map<string, Followed>();
  private readonly metrics: TailMetrics;
  private readonly parser: Parser;
  private readonly fastPath: boolean;
  /** The `json` parser without a time key and without multiline: lines go straight from JSON to MessagePack (json-msgpack.ts). */
  private readonly json: JsonTranscoder | null;
  /** The `path_key` as bytes: a line that already has that key goes the general path (the key's value is replaced there). */
  private readonly pathKeyName: Buffer | null;
  private readonly maxLine: number;
  private readonly readBuf: Buffer;
  private readonly readBytes: number;
  private readonly chunkStop: number;
  private readonly logLimiter = new LogLimiter();
  private journal: PositionJournal | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private nextScan = 0;
  private firstScan = true;
  private round = 0;
  private failures = 0;

  constructor(
    private readonly config: TailInputConfig,
    private readonly ctx: InputContext,
    private readonly consume: Consume,
  ) {
    this.metrics = createTailMetrics(ctx.registry);
    this.parser = createParser(config.parser);
    const chunkLimit = ctx.chunkLimitBytes ?? Number.POSITIVE_INFINITY;
    // a file's events in one round stay one chunk of at most the buffer's chunk limit (never split: its id covers it whole)
    this.maxLine = Math.max(64, Math.min(config.max_line_bytes, Math.floor(chunkLimit / 4)));
    this.chunkStop = Number.isFinite(chunkLimit) ? Math.max(1, chunkLimit - this.maxLine - 1024) : BATCH_BYTES;
    // a round's read of a file fits one chunk once encoded (events add ~12% to ~200-byte lines), so little is read twice
    this.readBytes = Math.max(this.maxLine + 1, Math.min(READ_BYTES, Math.floor(this.chunkStop * 0.8)));
    this.readBuf = Buffer.allocUnsafe(this.readBytes + this.maxLine);
    createGrouper(config.multiline.mode, config.multiline.first_line, this.maxLine); // a bad first_line fails the start
    this.fastPath = config.parser.type === 'none' && config.multiline.mode === 'none';
    const plainPathKey = config.path_key === undefined || JsonTranscoder.takesPathKey(config.path_key);
    this.json =
      config.parser.type === 'json' && config.multiline.mode === 'none' && config.parser.time_key === undefined && plainPathKey
        ? new JsonTranscoder()
        : null;
    this.pathKeyName = config.path_key === undefined ? null : Buffer.from(config.path_key);
  }

  /** Opens the position journal and starts the loop; rejects when the journal cannot be opened. */
  async start(): Promise<void> {
    this.journal = PositionJournal.open(resolve(this.config.positions_path), (err, what) => {
      this.metrics.errors.inc({ code: Codes.TRB_TAIL_POSITIONS });
      this.log('warn', Codes.TRB_TAIL_POSITIONS, `Closing a tail position journal file failed (${err.message}). ${what}`);
    });
    if (this.journal.corruptLines > 0) {
      this.metrics.errors.inc({ code: Codes.TRB_TAIL_POSITIONS });
      this.ctx.logger.warn(
        { code: Codes.TRB_TAIL_POSITIONS, lines: this.journal.corruptLines },
        `The tail position journal ${this.config.positions_path} has a line that does not parse: it and the lines after it, ${this.journal.corruptLines} in all, were dropped, so their files are read again from an earlier position (the buffer's memory of chunk ids skips what it already has).`,
      );
    }
    // run() handles its own failures; this catches a bug, so the loop's end is never silent
    this.loop = this.run().catch((err: Error) => {
      this.metrics.errors.inc({ code: Codes.TRB_TAIL_READ });
      this.ctx.logger.error(
        { code: Codes.TRB_TAIL_READ, err: err.message },
        `The tail input stopped on an unexpected error: ${err.message}.`,
      );
    });
  }

  /** Stops reading; a batch being handed over may finish for `graceMs`. Closes the files and the journal. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => {
      timer = setTimeout(r, graceMs);
    });
    await Promise.race([this.loop, grace]);
    clearTimeout(timer);
    for (const f of this.files.values()) await closeFd(f.fd).catch((err: Error) => this.closeFailed(f.position.path, err));
    this.files.clear();
    this.journal?.close();
    this.journal = null;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let handed = false;
      try {
        if (Date.now() >= this.nextScan) {
          await this.scan();
          this.nextScan = Date.now() + this.config.refresh_interval_ms;
        }
        handed = this.ctx.isFull?.() ? false : await this.readRound();
        this.failures = 0;
      } catch (err) {
        this.failed(err as Error);
        await this.sleep(backoffDelay(this.failures++, RETRY));
        continue;
      }
      if (!handed) await this.sleep(this.config.poll_interval_ms);
    }
  }

  private failed(err: Error & { code?: string }): void {
    const code: ErrorCode = err.code && isErrorCode(err.code) ? err.code : Codes.TRB_TAIL_READ;
    this.metrics.errors.inc({ code });
    this.log('warn', code, `The tail input could not hand lines over (${err.message}); it retries after a backoff.`);
  }

  /** One line per code per interval, with how many were left out since the last. */
  private log(level: 'warn' | 'info', code: ErrorCode, message: string): void {
    const suppressed = this.logLimiter.admit(code);
    if (suppressed === null) return;
    this.ctx.logger[level]({ code, suppressed }, message);
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((r) => {
      const timer = setTimeout(() => {
        this.wake = null;
        r();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        r();
      };
    });
  }

  // ── finding files ──────────────────────────────────────────────────────

  private async scan(): Promise<void> {
    const now = Date.now();
    const paths = await glob([...this.config.path], { ignore: [...this.config.exclude_path], absolute: true, onlyFiles: true, dot: true });
    const matched = new Set<string>();
    for (const path of paths.sort()) {
      let st: Stats;
      try {
        st = await statPath(path);
      } catch (err) {
        // gone between the glob and the stat; any other error is said, the file followed under that path stays
        // followed (from its descriptor), and the path is tried again at the next scan
        if (!isGone(err)) {
          this.fileError(path, err as Error);
          for (const f of this.files.values()) if (f.pathNow === path) matched.add(f.key);
        }
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      matched.add(key);
      const known = this.files.get(key);
      if (known) {
        known.pathNow = path;
        known.goneAt = null;
        known.position.seenAt = now;
      } else {
        const opened = await this.follow(path, null, now);
        if (opened) matched.add(opened.key);
      }
    }
    for (const f of this.files.values()) if (!matched.has(f.key)) this.gone(f, now);
    if (this.firstScan) await this.findRotatedWhileStopped(now);
    this.firstScan = false;
    this.forgetOld(now);
    this.metrics.files.set(this.files.size);
  }

  /** Opens `path` and resumes it from its saved position, if any; `rotated`: found renamed away at start. */
  private async follow(path: string, rotated: Position | null, now: number): Promise<Followed | null> {
    let fd: number;
    try {
      fd = await openFile(path, 'r');
    } catch (err) {
      this.fileError(path, err as Error);
      return null;
    }
    let closed = false;
    try {
      const st = await fstatFd(fd);
      const key = `${st.dev}:${st.ino}`;
      if (this.files.has(key)) {
        // renamed between the glob and the open: known under its new name at the next scan
        closed = true; // even when the close fails, the descriptor is released: never closed twice
        await closeFd(fd);
        return null;
      }
      const fp = await this.fingerprint(fd, Math.min(st.size, FINGERPRINT_BYTES));
      const journal = this.requireJournal();
      let saved: Position | null = rotated;
      let reused: Position | null = null;
      if (!saved) {
        for (const p of journal.positions()) {
          if (p.dev !== st.dev || p.ino !== st.ino) continue;
          if (p.fpLen <= st.size && (await this.fingerprint(fd, p.fpLen)).hash === p.fpHash) saved = p;
          else reused = p;
          break;
        }
      }
      let position: Position;
      if (saved) {
        position = { ...saved, seenAt: now };
        if (position.pos > st.size) {
          this.metrics.rotations.inc({ kind: 'truncate' });
          journal.forget([position.id]);
          position = { ...position, id: newFileId(), pos: 0, end: 0, skipping: false };
          journal.write([position]);
        }
      } else {
        // at the first start, a file found at a path a saved file had is its successor (rotated while stopped): read whole
        const successor = reused !== null || [...journal.positions()].some((p) => p.path === path);
        const from = this.firstScan && !this.config.read_from_head && !successor ? st.size : 0;
        position = {
          id: newFileId(),
          dev: st.dev,
          ino: st.ino,
          fpLen: fp.length,
          fpHash: fp.hash,
          path,
          pos: from,
          end: from,
          seenAt: now,
        };
        journal.write([position]);
      }
      if (reused) journal.forget([reused.id]); // truncated while stopped, or the inode now holds another file: read it whole
      const f: Followed = {
        fd,
        key,
        position,
        tag: tagFor(this.config.tag, position.path),
        readPos: position.pos,
        seenTo: position.pos,
        skipping: position.skipping === true,
        pendingEnd: position.end > position.pos && position.end <= st.size ? position.end : null,
        pathNow: rotated ? null : path,
        goneAt: rotated ? now : null,
        deleted: false,
        size: st.size,
        lastDataAt: now,
        checkedAt: now,
        grouper: createGrouper(this.config.multiline.mode, this.config.multiline.first_line, this.maxLine),
        pathKeyBytes: this.config.path_key === undefined ? null : packStrings([this.config.path_key, position.path]),
      };
      this.files.set(key, f);
      return f;
    } catch (err) {
      if (closed) this.closeFailed(path, err as Error);
      else {
        await closeFd(fd).catch((closeErr: Error) => this.closeFailed(path, closeErr));
        this.fileError(path, err as Error);
      }
      return null;
    }
  }

  /** A hash of the first `length` bytes of the file (fewer when it is shorter). */
  private async fingerprint(fd: number, length: number): Promise<{ length: number; hash: string }> {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await readFd(fd, buf, got, length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { length: got, hash: createHash('sha1').update(buf.subarray(0, got)).digest('hex').slice(0, 16) };
  }

  /**
   * A saved file that no glob matches at the first scan may have been rotated
   * while the agent was stopped: it is looked for in its directory by device,
   * inode and fingerprint, and finished from its saved position.
   */
  private async findRotatedWhileStopped(now: number): Promise<void> {
    const followedIds = new Set([...this.files.values()].map((f) => f.position.id));
    const byDir = new Map<string, Position[]>();
    for (const p of this.requireJournal().positions()) {
      if (followedIds.has(p.id)) continue;
      const list = byDir.get(dirname(p.path)) ?? [];
      list.push(p);
      byDir.set(dirname(p.path), list);
    }
    for (const [dir, saved] of byDir) {
      let names: string[];
      try {
        names = await listDir(dir);
      } catch (err) {
        if (!isGone(err)) this.fileError(dir, err as Error);
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        const st = await statPath(path).catch((err: Error) => {
          if (!isGone(err)) this.fileError(path, err);
          return null;
        });
        const p = st && saved.find((s) => s.dev === st.dev && s.ino === st.ino);
        if (!p || this.files.has(`${st.dev}:${st.ino}`)) continue;
        const f = await this.follow(path, p, now);
        if (f && (await this.fingerprint(f.fd, p.fpLen)).hash !== p.fpHash) {
          this.files.delete(f.key);
          await closeFd(f.fd);
        } else if (f) {
          this.metrics.rotations.inc({ kind: 'rename' });
          this.log(
            'info',
            Codes.TRB_TAIL_ROTATED,
            `The file ${p.path} was rotated to ${path} while stopped; it is finished from its saved position.`,
          );
        }
      }
    }
  }

  /** Positions of files no longer followed and not matched for `forget_after_ms` are dropped. */
  private forgetOld(now: number): void {
    const followed = new Set([...this.files.values()].map((f) => f.position.id));
    const old: string[] = [];
    for (const p of this.requireJournal().positions()) {
      if (!followed.has(p.id) && p.seenAt + this.config.forget_after_ms <= now) old.push(p.id);
    }
    this.requireJournal().forget(old);
  }

  private gone(f: Followed, now: number): void {
    if (f.goneAt !== null) return;
    f.goneAt = now;
    f.pathNow = null;
    this.metrics.rotations.inc({ kind: f.deleted ? 'delete' : 'rename' });
    this.log(
      'info',
      Codes.TRB_TAIL_ROTATED,
      `The file ${f.position.path} was renamed away or deleted; it is read for rotate_wait_ms more, then closed.`,
    );
  }

  private fileError(path: string, err: Error): void {
    this.metrics.errors.inc({ code: Codes.TRB_TAIL_READ });
    this.log('warn', Codes.TRB_TAIL_READ, `The file ${path} could not be read (${err.message}); it is tried again at the next poll.`);
  }

  /** A followed file's descriptor could not be closed; nothing it held is lost (it was only read). */
  private closeFailed(path: string, err: Error): void {
    this.metrics.errors.inc({ code: Codes.TRB_TAIL_READ });
    this.log('warn', Codes.TRB_TAIL_READ, `The file ${path} could not be closed (${err.message}); what was read from it is kept.`);
  }

  private requireJournal(): PositionJournal {
    if (!this.journal) throw new Error('The tail input is stopped.');
    return this.journal;
  }

  // ── reading ────────────────────────────────────────────────────────────

  /** One round: reads what is new in the files, hands it over, commits the positions. True when anything was read. */
  private async readRound(): Promise<boolean> {
    const now = Date.now();
    const time = EventTime.now();
    const files = [...this.files.values()];
    const parts: Part[] = [];
    let batchBytes = 0;
    let lag = 0;
    let maxLag = 0;
    const first = files.length ? this.round++ % files.length : 0;
    for (let i = 0; i < files.length && batchBytes < BATCH_BYTES; i++) {
      const f = files[(first + i) % files.length];
      let part: Part | null;
      try {
        part = await this.readFile(f, now, time);
      } catch (err) {
        this.fileError(f.position.path, err as Error);
        continue;
      }
      if (!part) continue;
      parts.push(part);
      batchBytes += part.chunk?.entries.length ?? 0;
    }
    for (const f of files) {
      const behind = Math.max(0, f.size - f.position.pos); // as of each file's last fstat
      lag += behind;
      maxLag = Math.max(maxLag, behind);
    }
    this.metrics.lagBytes.set(lag);
    this.metrics.maxLagBytes.set(maxLag);
    if (!parts.length) return false;
    const moved = parts.some((p) => p.chunk !== null || p.readPos !== p.file.readPos);
    await this.handOver(parts);
    return moved;
  }

  /** What `f` gives this round, or null when nothing changed. */
  private async readFile(f: Followed, now: number, time: EventTime): Promise<Part | null> {
    const st = fstatSync(f.fd);
    f.size = st.size;
    f.deleted = st.nlink === 0;
    if (st.size < f.seenTo && f.pendingEnd === null) {
      this.metrics.rotations.inc({ kind: 'truncate' });
      this.log(
        'info',
        Codes.TRB_TAIL_ROTATED,
        `The file ${f.position.path} was truncated (copytruncate); it is read again from its start.`,
      );
      f.readPos = 0;
      f.seenTo = 0;
      f.skipping = false;
      f.grouper?.reset();
      // a new id: chunk ids of the new content must not be taken for those of the old (the same ranges recur)
      this.requireJournal().forget([f.position.id]);
      f.position = { ...f.position, id: newFileId(), pos: 0, end: 0, skipping: false, fpLen: 0, fpHash: EMPTY_HASH };
      this.requireJournal().write([f.position]);
    }
    if (f.position.fpLen < FINGERPRINT_BYTES && st.size > f.position.fpLen) {
      // a file first seen short is identified by more of its bytes as it grows (kept with its next position record)
      const fp = await this.fingerprint(f.fd, Math.min(st.size, FINGERPRINT_BYTES));
      f.position = { ...f.position, fpLen: fp.length, fpHash: fp.hash };
    }
    const limit = f.pendingEnd ?? st.size;
    if (limit > f.seenTo) {
      const length = Math.min(limit - f.readPos, f.pendingEnd === null ? this.readBytes : this.readBuf.length);
      const bytesRead = readSync(f.fd, this.readBuf, 0, length, f.readPos);
      f.lastDataAt = now;
      return this.cut(f, bytesRead, time, f.pendingEnd !== null && f.readPos + bytesRead === f.pendingEnd);
    }
    return this.idle(f, now, time);
  }

  /** No new bytes: ends an open multiline record after `flush_ms`, notices rotation, closes a finished rotated file. */
  private async idle(f: Followed, now: number, time: EventTime): Promise<Part | null> {
    if (f.pathNow !== null && now - f.checkedAt >= Math.max(this.config.poll_interval_ms, ROTATION_CHECK_MS)) {
      f.checkedAt = now;
      // Only a path that is gone means a rotation: another error (EACCES, EIO) is said, and the file is still followed.
      let failed = false;
      const path = f.pathNow;
      const st = await statPath(path).catch((err: Error) => {
        failed = !isGone(err);
        if (failed) this.fileError(path, err);
        return null;
      });
      if (!failed && (!st || `${st.dev}:${st.ino}` !== f.key)) {
        this.gone(f, now);
        this.nextScan = 0; // the new file at that path is picked up at once
      }
    }
    const done = f.goneAt !== null && (f.deleted || now - f.goneAt >= this.config.rotate_wait_ms);
    if (done) {
      // the last line may lack its newline: it is a line all the same once the file is finished
      const rest = f.seenTo - f.readPos;
      if (rest > 0) {
        const bytesRead = readSync(f.fd, this.readBuf, 0, Math.min(rest, this.readBuf.length), f.readPos);
        const part = this.cut(f, bytesRead, time, true);
        part.close = part.readPos >= f.size;
        return part;
      }
      const part = this.cut(f, 0, time, true);
      part.close = true;
      return part;
    }
    if (f.grouper && f.grouper.openStart !== null && now - f.lastDataAt >= this.config.multiline.flush_ms)
      return this.cut(f, 0, time, true);
    return null;
  }

  /**
   * Cuts `n` bytes of `f` read at its `readPos` into events. `final`: the
   * bytes end where a record must end (a re-read range's end, a flush, a
   * finished file), so a partial line and an open multiline record end there.
   */
  private cut(f: Followed, n: number, time: EventTime, final: boolean): Part {
    const buf = this.readBuf.subarray(0, n);
    const out = new EntryWriter(this.fastPath || this.json ? Math.ceil(n * 1.25) + 64 : 4096);
    const groups: Group[] = [];
    let p = 0;
    let skipping = f.skipping;
    // One UTF-8 check for the read up to its last newline (no multi-byte character holds one) instead of one per line;
    // it stands for a whole line ending at a newline there, not for a line cut short or a last line without one.
    const checkedTo = this.json === null ? 0 : buf.lastIndexOf(10) + 1;
    const utf8 = checkedTo > 0 && isUtf8(buf.subarray(0, checkedTo));
    const emitLine = (a: number, b: number) => {
      if (this.fastPath) {
        out.rawMessage(time, buf, a, b, f.pathKeyBytes);
        return;
      }
      if (this.json) {
        // checked as UTF-8 with the rest of the read when the line ends inside it
        const wholeUtf8 = utf8 && b < checkedTo && (buf[b] === 10 || buf[b] === 13);
        if (out.jsonEntry(time, buf, a, b, f.pathKeyBytes, this.pathKeyName, this.json, wholeUtf8)) return;
      }
      if (f.grouper) f.grouper.push(buf.toString('utf8', a, b), f.readPos + a, groups);
      else groups.push({ text: buf.toString('utf8', a, b) });
      this.drain(groups, out, time, f);
    };
    while (p < n && out.bytes < this.chunkStop) {
      const nl = buf.indexOf(10, p);
      if (skipping) {
        if (nl < 0) {
          p = n;
          break;
        }
        p = nl + 1;
        skipping = false;
        continue;
      }
      if (nl < 0) {
        const rest = n - p;
        if (rest > this.maxLine) {
          this.longLine(f);
          if (this.config.long_lines === 'cut') emitLine(p, p + this.maxLine);
          skipping = true;
          p = n;
        } else if (final && rest > 0) {
          emitLine(p, n);
          p = n;
        }
        break;
      }
      const end = nl > p && buf[nl - 1] === 13 ? nl - 1 : nl;
      if (end - p > this.maxLine) {
        this.longLine(f);
        if (this.config.long_lines === 'cut') emitLine(p, p + this.maxLine);
      } else emitLine(p, end);
      p = nl + 1;
    }
    const readPos = f.readPos + p;
    if (final && f.grouper && readPos >= f.readPos + n) {
      f.grouper.flush(groups);
      this.drain(groups, out, time, f);
    }
    const pos = f.grouper?.openStart ?? readPos;
    return {
      file: f,
      chunk:
        out.count === 0
          ? null
          : {
              tag: f.tag,
              entries: out.take(),
              count: out.count,
              mode: 'packed',
              chunkId: `tail:${f.position.id}:${f.position.pos}-${pos}`,
            },
      pos,
      readPos,
      // stopped at the chunk limit: the rest is read at the next round, whether or not the file grows
      seenTo: out.bytes >= this.chunkStop ? readPos : f.readPos + n,
      skipping,
      bytes: p,
      close: false,
    };
  }

  private drain(groups: Group[], out: EntryWriter, time: EventTime, f: Followed): void {
    for (const g of groups) {
      let parsed = this.parser(g.text);
      if (!parsed) {
        this.parseFailed(f, `did not parse as ${this.config.parser.type}`);
        parsed = { record: { message: g.text } };
      }
      let entry: Buffer;
      try {
        entry = encodeEntry(parsed.time ?? g.time ?? time, this.withKeys(parsed.record, g, f));
      } catch (err) {
        // A record the encoder refuses (a `toJSON` key that is no function makes msgpackr call it) or nests past its
        // stack: kept as text, so that one line cannot stop the file (it would be read and refused again forever).
        // Any other error is a bug, not this line's: it propagates.
        if (!isRecordRefusal(err)) throw err;
        this.parseFailed(f, `parsed as ${this.config.parser.type} but could not be encoded (${(err as Error).message})`);
        entry = encodeEntry(g.time ?? time, this.withKeys({ message: g.text }, g, f));
      }
      out.entry(entry);
    }
    groups.length = 0;
  }

  /** `record` with the group's stream and the path key, when set. */
  private withKeys(record: Record<string, unknown>, g: Group, f: Followed): Record<string, unknown> {
    if (g.stream !== undefined) record.stream = g.stream;
    if (this.config.path_key !== undefined) record[this.config.path_key] = f.position.path;
    return record;
  }

  private parseFailed(f: Followed, why: string): void {
    this.metrics.parseErrors.inc();
    this.log('warn', Codes.TRB_TAIL_PARSE, `A line of ${f.position.path} ${why}; it is kept as {message}.`);
  }

  private longLine(f: Followed): void {
    this.metrics.longLines.inc({ action: this.config.long_lines });
    this.log(
      'warn',
      Codes.TRB_TAIL_LONG_LINE,
      `A line of ${f.position.path} is longer than max_line_bytes (${this.maxLine}); it was ${this.config.long_lines === 'cut' ? 'cut' : 'skipped'}.`,
    );
  }

  /**
   * Writes the intents ([pos, end) of each file with events), hands the
   * events over, then commits the new positions. When `consume` rejects,
   * nothing advances: the files are read again from their positions.
   */
  private async handOver(parts: Part[]): Promise<void> {
    const journal = this.requireJournal();
    const chunks: ForwardChunk[] = [];
    const intents: Position[] = [];
    for (const part of parts) {
      if (!part.chunk) continue;
      chunks.push(part.chunk);
      intents.push({ ...part.file.position, end: part.pos, seenAt: Date.now() });
    }
    try {
      journal.write(intents);
    } catch (err) {
      for (const part of parts) this.rewind(part.file);
      throw Object.assign(new Error(`writing the position journal failed: ${(err as Error).message}`), { code: Codes.TRB_TAIL_POSITIONS });
    }
    if (chunks.length) {
      try {
        const fresh = this.ctx.skipAcked ? await this.ctx.skipAcked(chunks) : chunks;
        if (fresh.length) await consumeInPieces(this.consume, fresh, this.ctx.chunkLimitBytes);
      } catch (err) {
        for (const part of parts) this.rewind(part.file);
        const e = err as Error & { code?: string };
        throw Object.assign(new Error(`the next stage refused a batch: ${e.message}`), { code: e.code ?? Codes.TRB_TAIL_REFUSED });
      }
      let records = 0;
      let bytes = 0;
      for (const c of chunks) records += c.count;
      for (const part of parts) if (part.chunk) bytes += part.bytes;
      this.metrics.lines.inc(records);
      this.metrics.bytesRead.inc(bytes);
      this.ctx.onAccepted?.(chunks);
    }
    const commits: Position[] = [];
    for (const part of parts) {
      const f = part.file;
      f.readPos = part.readPos;
      f.seenTo = part.seenTo;
      f.skipping = part.skipping;
      f.pendingEnd = null;
      if (part.pos !== f.position.pos || part.chunk || part.skipping !== (f.position.skipping === true)) {
        f.position = { ...f.position, pos: part.pos, end: part.pos, skipping: part.skipping || undefined, seenAt: Date.now() };
        commits.push(f.position);
      }
    }
    journal.write(commits);
    for (const part of parts) if (part.close) await this.closeFile(part.file);
  }

  /** Back to the file's saved position: what was read after it is read again. */
  private rewind(f: Followed): void {
    f.readPos = f.position.pos;
    f.seenTo = f.position.pos;
    f.skipping = f.position.skipping === true;
    f.grouper?.reset();
  }

  private async closeFile(f: Followed): Promise<void> {
    this.files.delete(f.key);
    this.metrics.files.set(this.files.size);
    await closeFd(f.fd).catch((err: Error) => this.closeFailed(f.position.path, err));
    // a deleted file cannot come back; a renamed one keeps its position (until forget_after_ms) in case a glob finds it
    if (f.deleted) this.requireJournal().forget([f.position.id]);
    this.log('info', Codes.TRB_TAIL_ROTATED, `The file ${f.position.path} was read to its end and closed.`);
  }
}

/** A file's id in chunk ids and the journal: random, given when it is first seen or starts over (truncated). */
function newFileId(): string {
  return randomBytes(8).toString('hex');
}

/** The tag for a file: the first `*` of `pattern` replaced by its path with `/` as `.` (Fluentd in_tail). */
function tagFor(pattern: string, path: string): string {
  const at = pattern.indexOf('*');
  if (at < 0) return pattern;
  const fromPath = path.replace(/^\/+/, '').replace(/\/+/g, '.');
  return pattern.slice(0, at) + fromPath + pattern.slice(at + 1);
}

/** msgpack strings back to back (the `path_key` pair of the fast path). */
function packStrings(values: string[]): Buffer {
  return Buffer.concat(
    values.map((v) => {
      const bytes = Buffer.from(v);
      return Buffer.concat([strHeader(bytes.length), bytes]);
    }),
  );
}

const MESSAGE_KEY = Buffer.from([0xa7, ...Buffer.from('message')]);

/** Events written back to back into one growing buffer. */
class EntryWriter {
  private buf: Buffer;
  bytes = 0;
  count = 0;

  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): void {
    if (this.bytes + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.bytes + n));
    this.buf.copy(next, 0, 0, this.bytes);
    this.buf = next;
  }

  /** `[time, {message: <bytes a..b of src>, …pathKey}]`, written without building an object. */
  rawMessage(time: EventTime, src: Buffer, a: number, b: number, pathKey: Buffer | null): void {
    const len = b - a;
    this.reserve(1 + EVENT_TIME_BYTES + 1 + MESSAGE_KEY.length + 5 + len + (pathKey?.length ?? 0));
    const buf = this.buf;
    let o = this.bytes;
    buf[o++] = 0x92;
    o = writeEventTime(buf, o, time.seconds, time.nanoseconds);
    buf[o++] = pathKey ? 0x82 : 0x81;
    o += MESSAGE_KEY.copy(buf, o);
    if (len < 32) buf[o++] = 0xa0 | len;
    else if (len < 256) {
      buf[o++] = 0xd9;
      buf[o++] = len;
    } else if (len < 65536) {
      buf[o++] = 0xda;
      buf.writeUInt16BE(len, o);
      o += 2;
    } else {
      buf[o++] = 0xdb;
      buf.writeUInt32BE(len, o);
      o += 4;
    }
    o += src.copy(buf, o, a, b);
    if (pathKey) o += pathKey.copy(buf, o);
    this.bytes = o;
    this.count++;
  }

  /**
   * `[time, <the JSON object line src[a, b) as its map>, …pathKey]`, through
   * `json`; false, nothing written, when the line is left to the general
   * path (JSON.parse): see json-msgpack.ts, and a line that already has the
   * key `pathKeyName`.
   */
  jsonEntry(
    time: EventTime,
    src: Buffer,
    a: number,
    b: number,
    pathKey: Buffer | null,
    pathKeyName: Buffer | null,
    json: JsonTranscoder,
    knownUtf8: boolean,
  ): boolean {
    this.reserve(1 + EVENT_TIME_BYTES + JsonTranscoder.maxBytes(b - a) + (pathKey?.length ?? 0));
    const buf = this.buf;
    let o = this.bytes;
    buf[o++] = 0x92;
    o = writeEventTime(buf, o, time.seconds, time.nanoseconds);
    const end = json.transcode(src, a, b, buf, o, pathKey ? 1 : 0, pathKeyName, knownUtf8);
    if (end < 0) return false;
    o = end;
    if (pathKey) o += pathKey.copy(buf, o);
    this.bytes = o;
    this.count++;
    return true;
  }

  entry(bytes: Buffer): void {
    this.reserve(bytes.length);
    this.bytes += bytes.copy(this.buf, this.bytes);
    this.count++;
  }

  /** The entries written; copied when most of the buffer is spare room, which the next stage would otherwise keep. */
  take(): Buffer {
    return this.bytes * 2 >= this.buf.length ? this.buf.subarray(0, this.bytes) : Buffer.from(this.buf.subarray(0, this.bytes));
  }
}
