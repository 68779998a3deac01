/**
 * Incomplete frames count in the server-wide budget (issue 10 item 4), and
 * the budget cannot deadlock: when every holder of a partial frame would be
 * paused, one keeps reading, so frames complete one after another.
 */
import { type Socket, connect } from 'node:net';
import { encodeEntry, encodePackedForward } from './encoder';
import { ForwardServer } from './server';

test('4 senders of 300 KiB frames in 8 KiB writes, with a 64 KiB budget: all acked, partial bytes bounded, then zero', async () => {
  const budget = 64 * 1024;
  let peakPartial = 0;
  const consumed: string[] = [];
  const server = new ForwardServer({
    port: 0,
    udpHeartbeat: false,
    maxPendingBytes: budget,
    consume: async (chunks) => {
      for (const c of chunks) consumed.push(c.chunkId as string);
    },
  });
  const { port } = await server.listen();
  try {
    const entries = Buffer.concat(Array.from({ length: 720 }, (_, i) => encodeEntry(1700000000, { i, pad: 'x'.repeat(420) })));
    const senders = Array.from({ length: 4 }, (_, n) => {
      const frame = encodePackedForward('t', entries, { chunk: `f${n}` });
      expect(frame.length).toBeGreaterThan(300 * 1024);
      return new Promise<string>((resolve, reject) => {
        const s: Socket = connect(port, '127.0.0.1', async () => {
          // First 40 KiB on every connection (together past the budget), then the rest.
          s.write(frame.subarray(0, 40 * 1024));
          await new Promise((r) => setTimeout(r, 300));
          for (let i = 40 * 1024; i < frame.length; i += 8192) {
            if (!s.write(frame.subarray(i, i + 8192))) await new Promise((r) => s.once('drain', r));
            peakPartial = Math.max(peakPartial, server.partialBytes);
            await new Promise((r) => setImmediate(r));
          }
        });
        let reply = '';
        s.on('data', (d) => {
          reply += d.toString('latin1');
          if (reply.includes(`f${n}`)) {
            s.end();
            resolve(reply);
          }
        });
        s.on('error', reject);
        setTimeout(() => reject(new Error(`sender ${n}: no ack within 10 s`)), 10_000).unref();
      });
    });
    await Promise.all(senders);
    expect(consumed.sort()).toEqual(['f0', 'f1', 'f2', 'f3']);
    // The budget, plus the one frame that keeps reading, plus a read per connection.
    expect(peakPartial).toBeLessThanOrEqual(budget + 320 * 1024 + 4 * 64 * 1024);
    expect(server.partialBytes).toBe(0);
  } finally {
    await server.close(500);
  }
});
