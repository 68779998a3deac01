/**
 * The one dead-letter writer of the line sinks: events a destination can
 * never accept are appended, one JSON line each with the reason, to
 * `<dir>/<sink name>.ndjson`, and synced before `append` resolves, so a
 * dead letter is as durable as a delivered event once egress commits past
 * it. Asynchronous (never blocks the event loop); a failure rejects with a
 * RetryableError so the caller keeps the batch.
 *
 * Object sinks (file, S3) do not use it: egress writes their dead letters as
 * objects under `_dead_letter/` in the sink itself, where their data lands.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Codes, RetryableError } from '@tributary/core';

export interface DeadLetterLine {
  /** What the destination would have received (an NDJSON line, without its newline). */
  line: string;
  reason: string;
}

export class DeadLetterFile {
  readonly file: string;

  constructor(
    private readonly dir: string,
    sinkName: string,
  ) {
    this.file = join(dir, `${sinkName}.ndjson`);
  }

  /** Appends and syncs `letters`; rejects with a RetryableError (nothing is lost: the caller keeps them). */
  async append(letters: readonly DeadLetterLine[], now = new Date()): Promise<void> {
    if (letters.length === 0) return;
    const at = now.toISOString();
    const text = letters.map((l) => `${JSON.stringify({ reason: l.reason, at, line: l.line })}\n`).join('');
    let handle: fsp.FileHandle | null = null;
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      handle = await fsp.open(this.file, 'a');
      await handle.writeFile(text);
      await handle.datasync();
    } catch (err) {
      throw new RetryableError(
        Codes.TRB_SINK_DEAD_LETTER,
        `Could not write ${letters.length} dead letters to ${this.file}: ${(err as Error).message}.`,
        err,
      );
    } finally {
      await handle?.close().catch(() => {}); // a close error after a successful sync loses nothing; the write's own error is the one reported
    }
  }
}
