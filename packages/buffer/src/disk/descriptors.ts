/**
 * The descriptors of the disk buffer's files and their fdatasync lifecycle:
 * open → append (page cache) → fdatasync → close, by the fsync policy.
 *
 * A chunk's file stays open while the chunk takes appends. Sealed, it closes
 * (see `sealedFileAction`) — after its pending sync, or without one once its
 * chunk is delivered: a buffer that keeps up then costs the disk almost
 * nothing. A descriptor is closed only when no sync runs on it and nothing
 * written to it is unsynced. A failed fdatasync fails the buffer (a retried
 * sync can falsely succeed); it is reported once.
 */
import type { Filesystem } from '@tributary/core';
import type { StorageEvents } from '../chunk-storage';
import { type FsyncPolicy, sealedFileAction, syncOrder } from './fsync-policy';

/** How long close waits for an interval sync still running on the id journal (5 ms steps). */
const JOURNAL_CLOSE_WAITS = 400;

export class Descriptors {
  /** Open chunks' files, by chunk key. */
  private readonly open = new Map<string, number>();
  /** Sealed chunks' files kept open for the next interval sync, by chunk key. */
  private readonly sealed = new Map<string, number>();
  /** Written since their last sync. */
  private readonly dirty = new Set<number>();
  /** Descriptors with fdatasyncs in progress (how many); closing them waits. */
  private readonly syncing = new Map<number, number>();
  /** Descriptors to close once idle. */
  private readonly closing = new Set<number>();
  private readonly timer: NodeJS.Timeout | null;
  private broken = false;

  constructor(
    private readonly fs: Filesystem,
    private readonly policy: FsyncPolicy,
    /** The acked chunk id journal's descriptor. */
    private readonly journalFd: () => number | null,
    private readonly events: StorageEvents,
  ) {
    this.timer = policy.intervalMs === null ? null : setInterval(() => this.tick(), policy.intervalMs);
    this.timer?.unref();
  }

  /** The descriptor of an open chunk's file. */
  get(key: string): number | undefined {
    return this.open.get(key);
  }

  /** An open chunk's file was opened. */
  add(key: string, fd: number): void {
    this.open.set(key, fd);
  }

  /** An open chunk's file leaves the lifecycle (its first write failed); the caller closes it with `closeUnsynced`. */
  remove(key: string): number | undefined {
    const fd = this.open.get(key);
    this.open.delete(key);
    return fd;
  }

  /** Bytes were written to `fd`; they wait for the next sync. */
  written(fd: number): void {
    this.dirty.add(fd);
  }

  /** The chunk takes no more appends: its file closes, by the policy. */
  seal(key: string): void {
    const fd = this.open.get(key);
    if (fd === undefined) return;
    this.open.delete(key);
    const action = sealedFileAction(this.policy, this.dirty.has(fd), this.sealed.size);
    if (action === 'keep') {
      this.sealed.set(key, fd);
      return;
    }
    if (action === 'sync-close') this.syncFd(fd, () => {}); // a failure fails the buffer (syncFailed)
    this.closeWhenSynced(fd);
  }

  /** The chunk's file is about to be deleted: its descriptor closes without its pending sync. */
  released(key: string): void {
    const fd = this.sealed.get(key);
    if (fd === undefined) return;
    this.sealed.delete(key);
    this.closeUnsynced(fd);
  }

  /** Closes `fd` without its pending sync (its file is going, or was replaced). */
  closeUnsynced(fd: number): void {
    this.dirty.delete(fd);
    this.closeWhenSynced(fd);
  }

  /** Under `always`: syncs every file written, for the append about to resolve. */
  async syncForAck(): Promise<void> {
    if (!this.policy.syncBeforeAck || this.dirty.size === 0) return;
    const fds = [...this.dirty];
    await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => this.syncFd(fd, (err) => (err ? reject(err) : resolve())))));
  }

  /**
   * Stops the interval, syncs what is still unsynced (blocking: this is
   * shutdown), closes the sealed files, then the journal once an interval
   * sync still running on it is done (bounded wait).
   */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const fd of this.dirty) {
      try {
        this.fs.fdatasyncSync(fd);
      } catch (err) {
        this.syncFailed(err as NodeJS.ErrnoException);
      }
    }
    this.dirty.clear();
    for (const fd of this.sealed.values()) this.closeWhenSynced(fd);
    this.sealed.clear();
    const journal = this.journalFd();
    if (journal === null) return;
    for (let i = 0; i < JOURNAL_CLOSE_WAITS && this.syncing.has(journal); i++) await new Promise((r) => setTimeout(r, 5));
    if (this.syncing.has(journal)) {
      this.closeWhenSynced(journal);
      return;
    }
    try {
      this.fs.closeSync(journal);
    } catch (err) {
      this.events.ioError('close', err as NodeJS.ErrnoException, 'The acked chunk id journal could not be closed.');
    }
  }

  /**
   * The interval policy's tick: sync every file written since the last tick,
   * one at a time (a backlog of hundreds of files synced at once would take
   * every libuv thread and stall the reads and deletes the output needs),
   * then close the sealed ones.
   */
  private tick(): void {
    if (this.syncing.size) return; // the last tick's syncs are still running; this tick's files wait for the next
    const fds = syncOrder(this.dirty, this.journalFd());
    for (const [key, fd] of this.sealed) {
      this.sealed.delete(key);
      this.closeWhenSynced(fd);
    }
    const next = (i: number): void => {
      if (i >= fds.length) return;
      // A file whose chunk was delivered meanwhile is closed and needs no sync.
      if (this.dirty.has(fds[i])) this.syncFd(fds[i], () => next(i + 1));
      else next(i + 1);
    };
    next(0);
  }

  /** fdatasync on the libuv pool; `done` runs once it settled and the descriptor was closed if due. */
  private syncFd(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
    this.dirty.delete(fd);
    this.syncing.set(fd, (this.syncing.get(fd) ?? 0) + 1);
    this.fs.fdatasync(fd).then(
      () => this.synced(fd, null, done),
      (err: NodeJS.ErrnoException) => this.synced(fd, err, done),
    );
  }

  private synced(fd: number, err: NodeJS.ErrnoException | null, done: (err: NodeJS.ErrnoException | null) => void): void {
    const left = (this.syncing.get(fd) ?? 1) - 1;
    if (left > 0) this.syncing.set(fd, left);
    else this.syncing.delete(fd);
    if (err) this.syncFailed(err);
    this.closeIfIdle(fd);
    done(err);
  }

  private syncFailed(err: NodeJS.ErrnoException): void {
    if (this.broken) return;
    this.broken = true;
    this.events.fail(`fdatasync failed (${err.message}); restart the forwarder once the disk is fixed`);
    this.events.ioError('fdatasync', err, 'The buffer takes no more events until a restart: a retried fdatasync can falsely succeed.');
  }

  private closeWhenSynced(fd: number): void {
    this.closing.add(fd);
    this.closeIfIdle(fd);
  }

  private closeIfIdle(fd: number): void {
    if (!this.closing.has(fd) || this.syncing.has(fd) || this.dirty.has(fd)) return;
    this.closing.delete(fd);
    this.fs
      .close(fd)
      .catch((err: NodeJS.ErrnoException) => this.events.ioError('close', err, 'A buffer file descriptor could not be closed.'));
  }
}
