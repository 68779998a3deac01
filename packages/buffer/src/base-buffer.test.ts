/**
 * Waiting for space under `overflow: block` (BaseBuffer's `store`,
 * `wakeWaiters`, `waitForSpace`), on the memory buffer, whose stored bytes
 * are exactly the entries' bytes: batches that wait are stored in the order
 * they started waiting. Room that frees for less than the head waiter needs
 * is not given to a smaller waiter behind it, and room given to a woken batch
 * that has not run yet is not given again.
 */
import { EventTime, type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import type { SealedChunk } from './chunk-buffer';
import { MemoryBuffer } from './memory-buffer';

const t = new EventTime(1700000000, 0);
/** One entry's bytes: every batch is a whole number of them. */
const UNIT = encodeEntry(t, { pad: 'x'.repeat(80) }).length;

const batch = (tag: string, units: number): ForwardChunk => ({
  tag,
  entries: Buffer.concat(Array.from({ length: units }, () => encodeEntry(t, { pad: 'x'.repeat(80) }))),
  count: units,
  mode: 'packed',
});

/** A buffer of `units` UNITs holding two chunks of `units / 2`, sealed and taken for sending: acking one frees its room. */
async function fullBuffer(units: number): Promise<{ buffer: MemoryBuffer; held: SealedChunk[] }> {
  const buffer = new MemoryBuffer(
    { maxBytes: units * UNIT, chunkLimitBytes: 1024 * 1024, flushIntervalMs: 60_000, overflow: 'block' },
    { maxEntries: 0, ttlMs: 60_000 },
  );
  await buffer.append([batch('x1', units / 2)]);
  await buffer.append([batch('x2', units / 2)]);
  buffer.sealDue(Date.now(), true);
  const held = [buffer.take(), buffer.take()].filter((c): c is SealedChunk => c !== null);
  expect(held.map((c) => c.tag)).toEqual(['x1', 'x2']);
  expect(buffer.stats().bytes).toBe(units * UNIT);
  return { buffer, held };
}

/** Appends `chunk`, recording its tag in `stored` once the append resolved. */
function appendRecorded(buffer: MemoryBuffer, chunk: ForwardChunk, stored: string[]): Promise<void> {
  return buffer.append([chunk]).then(() => {
    stored.push(chunk.tag);
  });
}

/** Lets every pending callback and group commit run (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

test('room for a later, smaller waiter but not for the head waiter goes to neither: the later one does not jump ahead', async () => {
  const { buffer, held } = await fullBuffer(4);
  const stored: string[] = [];
  const a = appendRecorded(buffer, batch('a', 3), stored);
  const b = appendRecorded(buffer, batch('b', 1), stored);
  await settle();
  expect(stored).toEqual([]);

  await buffer.ack(held[0]); // 2 units free: b would fit, a does not
  await settle();
  expect(stored).toEqual([]);
  expect(buffer.stats().bytes).toBe(2 * UNIT);

  await buffer.ack(held[1]); // 4 units free: room for both, in their order
  await Promise.all([a, b]);
  expect(stored).toEqual(['a', 'b']);
  expect(buffer.stats().bytes).toBe(4 * UNIT);
  await buffer.close();
});

test('room freed twice in one turn: what the first wake gave is not given again, so the smaller waiter behind the next one does not pass it', async () => {
  const { buffer, held } = await fullBuffer(4);
  const stored: string[] = [];
  const a0 = appendRecorded(buffer, batch('a0', 2), stored);
  const a = appendRecorded(buffer, batch('a', 3), stored);
  const b = appendRecorded(buffer, batch('b', 1), stored);
  await settle();
  expect(stored).toEqual([]);

  // Both acks free their room in one turn: the first wakes a0 (2 units), the second runs before a0 has queued its
  // bytes. (Counting only stored and queued bytes, the second woke a and b as well; a then found its room taken and
  // waited again, while b, woken with it, was stored ahead of it.)
  await Promise.all([buffer.ack(held[0]), buffer.ack(held[1])]);
  await settle();
  // a0 took 2 units; a (3) does not fit in the 2 left and b (1) waits behind it.
  expect(stored).toEqual(['a0']);
  expect(buffer.stats().bytes).toBe(2 * UNIT);

  buffer.sealDue(Date.now(), true);
  const c = buffer.take();
  expect(c?.tag).toBe('a0');
  await buffer.ack(c as SealedChunk);
  await Promise.all([a0, a, b]);
  expect(stored).toEqual(['a0', 'a', 'b']);
  await buffer.close();
});

test('a batch arriving while others wait queues behind them even when it would fit: small batches cannot hold a larger one back for good', async () => {
  const { buffer, held } = await fullBuffer(4);
  const stored: string[] = [];
  const a = appendRecorded(buffer, batch('a', 3), stored);
  await settle();
  await buffer.ack(held[0]); // 2 units free: a (3) still waits
  await settle();
  expect(stored).toEqual([]);

  // A stream of 1-unit batches arrives, each of which would fit: they wait behind a.
  const small = [1, 2, 3].map((i) => appendRecorded(buffer, batch(`s${i}`, 1), stored));
  await settle();
  expect(stored).toEqual([]);
  expect(buffer.stats().bytes).toBe(2 * UNIT);

  await buffer.ack(held[1]); // 4 units free: a first, then the one small batch that fits beside it
  await settle();
  expect(stored).toEqual(['a', 's1']);
  buffer.sealDue(Date.now(), true);
  for (let c = buffer.take(); c; c = buffer.take()) await buffer.ack(c);
  await Promise.all([a, ...small]);
  expect(stored).toEqual(['a', 's1', 's2', 's3']);
  await buffer.close();
});
