import type { Filesystem } from './fs';

/**
 * What is left to write after a vectored write wrote `written` bytes of
 * `buffers` (writev may write less than asked): what `writevAllSync` and
 * `writevAll` hand the next call.
 */
export function remainingBuffers(buffers: Buffer[], written: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = written;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/**
 * The error for a writev that wrote nothing with bytes left: a loop that
 * called again would spin on it. EIO, so callers treat it as the failed
 * write it is (refused append, retried batch).
 */
function noProgress(fd: number, written: number, bytes: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(
    `EIO: a write to descriptor ${fd} wrote nothing with ${bytes - written} of ${bytes} bytes left (writev returned 0)`,
  );
  err.code = 'EIO';
  err.syscall = 'writev';
  return err;
}

/**
 * Writes every byte of `buffers` (`bytes` in all) at `position` (or the
 * descriptor's offset), call after call, as writev may write less than asked.
 * Throws EIO when a call writes nothing.
 */
export function writevAllSync(fs: Pick<Filesystem, 'writevSync'>, fd: number, buffers: Buffer[], bytes: number, position?: number): void {
  let written = 0;
  while (written < bytes) {
    const n = fs.writevSync(
      fd,
      written === 0 ? buffers : remainingBuffers(buffers, written),
      position === undefined ? undefined : position + written,
    );
    if (!(n > 0)) throw noProgress(fd, written, bytes);
    written += n;
  }
}

/** `writevAllSync` on the thread pool, at the descriptor's offset. */
export async function writevAll(fs: Pick<Filesystem, 'writev'>, fd: number, buffers: Buffer[]): Promise<void> {
  let bytes = 0;
  for (const b of buffers) bytes += b.length;
  let written = 0;
  while (written < bytes) {
    const n = await fs.writev(fd, written === 0 ? buffers : remainingBuffers(buffers, written));
    if (!(n > 0)) throw noProgress(fd, written, bytes);
    written += n;
  }
}
