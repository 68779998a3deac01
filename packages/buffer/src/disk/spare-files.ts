/**
 * Empty chunk files created ahead of time in the background, so a new chunk
 * never creates its file on the event loop: creating a file can wait on the
 * filesystem journal (behind another file's fdatasync) for milliseconds.
 * A spare left by a crash is an empty chunk file, which recovery removes.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Filesystem } from '@tributary/core';
import type { StorageEvents } from '../chunk-storage';
import { CHUNK_ID_BYTES, chunkFileName } from './chunk-file';

/** Spare files kept ready. */
const SPARE_FILES = 8;
/** How long close waits for spares still being created (5 ms steps). */
const CLOSE_WAITS = 200;

export interface SpareFile {
  id: Buffer;
  /** Open for appends. */
  fd: number;
}

export class SpareFiles {
  private readonly ready: SpareFile[] = [];
  private pending = 0;
  /** Set while creating spares fails, so the failure is reported once, not per attempt. */
  private failing = false;
  private closed = false;

  constructor(
    private readonly fs: Filesystem,
    private readonly dir: string,
    private readonly events: StorageEvents,
  ) {}

  /** A spare file, now owned by the caller, or undefined when none is ready (the caller then creates its own). Starts a refill. */
  take(): SpareFile | undefined {
    const spare = this.ready.shift();
    this.refill();
    return spare;
  }

  /** Starts creating spares up to the count kept ready. */
  refill(): void {
    while (!this.closed && this.ready.length + this.pending < SPARE_FILES) {
      this.pending++;
      const id = randomBytes(CHUNK_ID_BYTES);
      this.fs.open(join(this.dir, chunkFileName(id)), 'a').then(
        (fd) => {
          this.pending--;
          this.failing = false;
          if (this.closed) this.discard({ id, fd });
          else this.ready.push({ id, fd });
        },
        (err: NodeJS.ErrnoException) => {
          this.pending--;
          if (!this.failing) this.events.ioError('open', err, 'A spare chunk file could not be created; new chunks create their own.');
          this.failing = true;
        },
      );
    }
  }

  /** Removes the spares; one still being created removes itself when its open returns (waited for, bounded). */
  async close(): Promise<void> {
    this.closed = true;
    for (let i = 0; i < CLOSE_WAITS && this.pending > 0; i++) await new Promise((r) => setTimeout(r, 5));
    for (const spare of this.ready.splice(0)) this.discard(spare);
  }

  private discard(spare: SpareFile): void {
    try {
      this.fs.closeSync(spare.fd);
      this.fs.unlinkSync(join(this.dir, chunkFileName(spare.id)));
    } catch (err) {
      this.events.ioError('unlink', err as NodeJS.ErrnoException, 'An unused spare chunk file was left; the next start removes it.');
    }
  }
}
