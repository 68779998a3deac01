/**
 * Consumer-group positions of the embedded log: `dir/<group>.json` holding
 * `{"offset": n, "at": iso time}`, the offset of the next record the group
 * reads. Each save replaces the whole file atomically (temp file, fdatasync,
 * rename), so a crash leaves the old position or the new one, never a torn one.
 */
import { join } from 'node:path';
import { type Filesystem, RetryableError, writeFileAtomic } from '@tributary/core';
import { LogErrorCode } from '../durable-log';

export class OffsetStore {
  private readonly offsets = new Map<string, number>();
  /** Groups whose file could not be read at load, and why. */
  private readonly unreadableGroups = new Map<string, string>();

  constructor(
    private readonly fs: Filesystem,
    private readonly dir: string,
  ) {}

  /**
   * Reads every group's position. A file that cannot be read, or does not
   * hold an offset within the log (0..`logEnd`), is not taken as offset 0
   * (that would silently replay the whole retained log): the group is
   * `unreadable` until an operator restores or removes the file
   * (docs/operations.md), and counts as offset 0 for retention meanwhile.
   */
  async load(logEnd: number): Promise<void> {
    for (const name of await this.fs.readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const group = name.slice(0, -5);
      const path = join(this.dir, name);
      let offset: unknown;
      try {
        offset = JSON.parse((await this.fs.readFile(path)).toString('utf8')).offset;
      } catch (err) {
        this.unreadableGroups.set(group, `${path} cannot be read (${(err as Error).message})`);
      }
      if (!this.unreadableGroups.has(group) && (!Number.isSafeInteger(offset) || (offset as number) < 0 || (offset as number) > logEnd)) {
        this.unreadableGroups.set(group, `${path} holds offset ${JSON.stringify(offset)}, not one within the log (0..${logEnd})`);
      }
      this.offsets.set(group, this.unreadableGroups.has(group) ? 0 : (offset as number));
    }
  }

  /** The group's position; 0 for a group never committed. */
  committed(group: string): number {
    return this.offsets.get(group) ?? 0;
  }

  /** Counts a group that has not committed yet as being at 0, so retention keeps what it has not read. */
  register(group: string): void {
    if (!this.offsets.has(group)) this.offsets.set(group, 0);
  }

  /** Every known group's position (registered ones included). */
  positions(): IterableIterator<number> {
    return this.offsets.values();
  }

  /** Why the group's file could not be read at load; null when it was (or there was none). */
  unreadable(group: string): string | null {
    return this.unreadableGroups.get(group) ?? null;
  }

  /**
   * Durably records the group's position. Rejects with a RetryableError
   * (TRB_LOG_COMMIT) when the disk refuses (ENOSPC, EIO): the position, on
   * disk and here, stays where it was and the caller retries.
   */
  async save(group: string, offset: number): Promise<void> {
    const file = join(this.dir, `${group}.json`);
    try {
      await writeFileAtomic(file, JSON.stringify({ offset, at: new Date().toISOString() }), `${file}.tmp`, this.fs);
    } catch (err) {
      throw new RetryableError(
        LogErrorCode.Commit,
        `Saving consumer group ${group}'s position (offset ${offset}) failed: ${(err as Error).message}.`,
        err,
      );
    }
    this.offsets.set(group, offset);
  }
}
