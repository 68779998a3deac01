/**
 * What is left to write after a vectored write wrote `written` bytes of
 * `buffers` (writev may write less than asked). Shared by the forwarder's
 * disk buffer and the aggregator's embedded log.
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
