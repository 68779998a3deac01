/**
 * How a sink runs the calls of one `put` side by side (objects written,
 * PutObject or PutRecordBatch calls): at most `limit` at once, and once one
 * fails no new one starts and the put settles only when none is in flight.
 * So nothing of a rejected put still runs, or holds its buffers, beside
 * egress's retry of the same data (which would write or send it twice at once).
 */

/**
 * Calls `run` on every item, at most `limit` at a time, in order. Resolves
 * once all resolved; after the first rejection starts no other call and
 * rejects with that error once every call already running has settled.
 */
export async function runConcurrently<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await run(items[next++]);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}
