/**
 * Graceful stop (issue 11 item 1): a client still writing when the server
 * stops receives an ack for every chunk the server consumed, and no reset.
 */
import { connect } from 'node:net';
import { Unpackr } from 'msgpackr';
import { encodeEntry, encodePackedForward } from './encoder';
import { ForwardServer } from './server';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

test('close() mid-stream: every consumed chunk is acked to the writing client, then FIN, not RST', async () => {
  const consumed = new Set<string>();
  const server = new ForwardServer({
    port: 0,
    udpHeartbeat: false,
    maxInFlight: 4,
    consume: async (chunks) => {
      await new Promise((r) => setTimeout(r, 20)); // a downstream fsync
      for (const c of chunks) consumed.add(c.chunkId as string);
    },
  });
  const { port } = await server.listen();
  const entry = encodeEntry(1700000000, { pad: 'x'.repeat(2000) });
  const acked = new Set<string>();
  let clientError: NodeJS.ErrnoException | null = null;
  let sent = 0;
  const socket = connect(port, '127.0.0.1');
  let pending = Buffer.alloc(0);
  socket.on('data', (d) => {
    pending = Buffer.concat([pending, d]);
    // Acks are small maps; decode what is complete.
    try {
      for (const a of unpackr.unpackMultiple(pending) as Array<{ ack: string }>) acked.add(a.ack);
      pending = Buffer.alloc(0);
    } catch {
      // incomplete: wait for more
    }
  });
  socket.on('error', (err) => {
    clientError = err;
  });
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  // Keep writing, as a busy forwarder does, until the server's FIN.
  let writing = true;
  socket.on('end', () => {
    writing = false;
  });
  const writer = (async () => {
    while (writing && sent < 20_000 && !socket.destroyed) {
      const id = `c${sent++}`;
      if (!socket.write(encodePackedForward('t', Buffer.concat([entry, entry]), { chunk: id }))) {
        await new Promise((r) => setTimeout(r, 1));
      }
      if (sent % 20 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  const stopped = Date.now();
  await server.close(5000);
  const stopMs = Date.now() - stopped;
  await writer;
  await closed;
  expect(consumed.size).toBeGreaterThan(0);
  expect(clientError).toBeNull();
  expect([...consumed].filter((id) => !acked.has(id))).toEqual([]);
  expect(stopMs).toBeLessThan(5000);
}, 20_000);
