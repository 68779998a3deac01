import { BufferPool } from './buffer-pool';
import { ForwardConnection } from './client';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodePackedForward } from './encoder';
import { decodeEntries } from './entries';
import { EventTime } from './event-time';
import { ForwardServer } from './server';

const t = new EventTime(1700000001, 5);

test('BufferPool: power-of-two buffers, reused once given back, bounded, foreign buffers refused', () => {
  const pool = new BufferPool(512 * 1024);
  const a = pool.take(200_000);
  expect(a.length).toBe(256 * 1024);
  pool.give(a);
  expect(pool.heldBytes).toBe(256 * 1024);
  expect(pool.take(150_000)).toBe(a);
  expect(pool.heldBytes).toBe(0);
  expect(pool.take(1000).length).toBe(64 * 1024);
  pool.give(Buffer.alloc(100_000)); // not a pool size
  pool.give(a.subarray(0, 128 * 1024)); // a view of a pool buffer
  expect(pool.heldBytes).toBe(0);
  const [b, c, d] = [pool.take(256 * 1024), pool.take(256 * 1024), pool.take(256 * 1024)];
  for (const x of [b, c, d]) pool.give(x);
  expect(pool.heldBytes).toBe(512 * 1024); // the third was over the bound
});

/** A PackedForward request of `events` events and its entries. */
function request(events: number, id: string): { frame: Buffer; entries: Buffer } {
  const entries = Buffer.concat(Array.from({ length: events }, (_, i) => encodeEntry(t, { i, id, pad: 'p'.repeat(180) })));
  return { frame: encodePackedForward('pool.test', entries, { chunk: id, size: events }), entries };
}

test('FrameDecoder with a pool: a frame assembled across reads is handed out in a pool buffer, unless the decoder keeps a view of it', () => {
  const pool = new BufferPool(8 * 1024 * 1024);
  const d = new FrameDecoder(undefined, pool);
  const { frame } = request(1000, 'a');
  const third = Math.floor(frame.length / 3);
  expect(d.pushRanges(frame.subarray(0, third)).ranges).toEqual([]);
  expect(d.pushRanges(frame.subarray(third, 2 * third)).ranges).toEqual([]);
  const last = d.pushRanges(frame.subarray(2 * third));
  expect(last.ranges).toEqual([0, frame.length]);
  expect(d.handedOutBuffer).not.toBeNull();
  expect(last.buf.buffer).toBe(d.handedOutBuffer?.buffer);
  expect(last.buf.subarray(0, frame.length).equals(frame)).toBe(true);

  // a short frame whose last read carries most of a long one: that tail stays a view of the buffer, which is then not handed out
  const short = request(50, 'b').frame;
  const next = request(1000, 'c').frame;
  d.pushRanges(short.subarray(0, 100));
  const out = d.pushRanges(Buffer.concat([short.subarray(100), next.subarray(0, next.length - 1)]));
  expect(out.ranges).toEqual([0, short.length]);
  expect(d.handedOutBuffer).toBeNull();
  expect(d.push(next.subarray(next.length - 1))[0].equals(next)).toBe(true);
  // a short tail is copied out instead: the buffer is handed out
  d.pushRanges(short.subarray(0, 100));
  const copied = d.pushRanges(Buffer.concat([short.subarray(100), next.subarray(0, 10)]));
  expect(copied.ranges).toEqual([0, short.length]);
  expect(d.handedOutBuffer?.buffer).toBe(copied.buf.buffer);
});

async function sendAll(consumeReleasesBuffers: boolean, chunks: number) {
  const seen: Array<{ entries: Buffer; intact: boolean }> = [];
  const sent = Array.from({ length: chunks }, (_, c) => request(1000, `c${c}`));
  const server = new ForwardServer({
    port: 0,
    udpHeartbeat: false,
    consumeReleasesBuffers,
    consume: async (batch) => {
      for (const chunk of batch) {
        const n = Number(/^c(\d+)$/.exec(chunk.chunkId ?? '')?.[1]);
        seen.push({
          entries: chunk.entries,
          intact: chunk.entries.equals(sent[n].entries) && decodeEntries(chunk.entries).length === 1000,
        });
      }
    },
  });
  const { port } = await server.listen();
  const conn = await ForwardConnection.connect({ host: '127.0.0.1', port });
  try {
    for (let c = 0; c < chunks; c++) await conn.send(sent[c].frame, `c${c}`); // one at a time: each acked before the next
  } finally {
    await conn.end();
    await server.close(1000);
  }
  return seen;
}

test('ForwardServer with consumeReleasesBuffers: requests spanning reads reuse their buffers once acked, and every chunk arrives intact', async () => {
  const pooled = await sendAll(true, 12);
  expect(pooled).toHaveLength(12);
  expect(pooled.every((s) => s.intact)).toBe(true);
  expect(new Set(pooled.map((s) => s.entries.buffer)).size).toBeLessThanOrEqual(3);

  const fresh = await sendAll(false, 12);
  expect(fresh.every((s) => s.intact)).toBe(true);
  expect(new Set(fresh.map((s) => s.entries.buffer)).size).toBe(12);
});
