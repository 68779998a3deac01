/**
 * A load generator for tests: sends numbered events through Tributary's own
 * Forward client with acks and remembers exactly which events were acked.
 */
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';

export interface ProducerStats {
  acked: Set<number>;
  sent: number;
  failures: number;
}

/**
 * Sends chunks of `perChunk` events (ids counting up from 0) to host:port until
 * `stop()` is called or `maxEvents` is reached; on a failure, reconnects and
 * resends the same chunk (at-least-once, as a real client does).
 */
export function produce(
  port: number,
  opts: { perChunk: number; maxEvents: number; tag?: string; pauseMs?: number; firstId?: number; ackTimeoutMs?: number },
) {
  const stats: ProducerStats = { acked: new Set(), sent: 0, failures: 0 };
  let stopped = false;
  const done = (async () => {
    let conn: ForwardConnection | null = null;
    const first = opts.firstId ?? 0;
    let next = first;
    const deadline = Date.now() + 180_000;
    while (!stopped && next < first + opts.maxEvents && Date.now() < deadline) {
      const ids = Array.from({ length: Math.min(opts.perChunk, first + opts.maxEvents - next) }, (_, i) => next + i);
      const entries = Buffer.concat(ids.map((n) => encodeEntry(new EventTime(1700000000, n), { n, pad: 'p'.repeat(100) })));
      const chunkId = `p-${ids[0]}`;
      try {
        conn ??= await ForwardConnection.connect({
          host: '127.0.0.1',
          port,
          ackTimeoutMs: opts.ackTimeoutMs ?? 10_000,
          connectTimeoutMs: 1000,
        });
        stats.sent += ids.length;
        await conn.send(encodePackedForward(opts.tag ?? 'load', entries, { chunk: chunkId, size: ids.length }), chunkId);
        for (const n of ids) stats.acked.add(n);
        next += ids.length;
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      } catch {
        stats.failures++;
        conn?.destroy();
        conn = null;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await conn?.end();
  })();
  return {
    stats,
    stop: () => {
      stopped = true;
      return done;
    },
    done,
  };
}
