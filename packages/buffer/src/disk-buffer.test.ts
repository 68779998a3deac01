import { appendFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Filesystem, realFilesystem } from '@tributary/core';
import { EventTime, type ForwardChunk, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { JOURNAL_FILE } from './acked-chunk-ids';
import type { SealedChunk } from './chunk-buffer';
import { DiskBuffer, type DiskBufferOptions } from './disk-buffer';
import { WriteCache } from './disk/write-cache';
import { MemoryBuffer } from './memory-buffer';

// The filesystem seam with fdatasyncs counted, so a test can tell whether a sync completed before an append resolved.
const syncs = { completed: 0 };
const countingFs: Filesystem = {
  ...realFilesystem,
  fdatasync: (fd) =>
    realFilesystem.fdatasync(fd).finally(() => {
      syncs.completed++;
    }),
};

const t = new EventTime(1700000000, 5);
const chunk = (tag: string, from: number, n: number): ForwardChunk => {
  const entries = Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(t, { i: from + i, pad: 'x'.repeat(50) })));
  return { tag, entries, count: n, mode: 'packed' };
};

let dir: string;
// Every buffer a test opens, closed afterwards (also the ones a test leaves open to play a crash): a buffer
// creates spare chunk files in the background, which must not land while the directory is being removed.
const opened: DiskBuffer[] = [];
const realOpen = DiskBuffer.open.bind(DiskBuffer);
beforeAll(() => {
  jest.spyOn(DiskBuffer, 'open').mockImplementation(async (o) => {
    const result = await realOpen(o);
    opened.push(result.buffer);
    return result;
  });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-buf-'));
});
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
});

const ACKED_IDS = { maxEntries: 1000, ttlMs: 60_000 };

const opts = (o: Partial<DiskBufferOptions> = {}): DiskBufferOptions => ({
  path: dir,
  maxBytes: 10 * 1024 * 1024,
  chunkLimitBytes: 4096,
  flushIntervalMs: 60_000,
  overflow: 'block',
  fsync: 'interval',
  fsyncIntervalMs: 1000,
  memoryCacheBytes: 1024 * 1024,
  ackedIds: ACKED_IDS,
  fs: countingFs,
  ...o,
});

/** Chunk files holding data (the buffer also keeps a few empty ones ready for the next chunks). */
const chunkFiles = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.chunk') && statSync(join(dir, f)).size > 0);
/** Every file but the acked chunk id journal, which stays. */
const bufferFiles = (): string[] => readdirSync(dir).filter((f) => f !== JOURNAL_FILE);

/**
 * This process's open descriptors on files under `path`. Only the buffer's own: a count of all of
 * them also moved with whatever else the jest worker had open or was closing (it failed 1 run in 7).
 */
function descriptorsIn(path: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${path}/`)) out.push(target);
    } catch {
      // closed between the listing and the readlink: not open
    }
  }
  return out;
}

async function drain(buffer: DiskBuffer | MemoryBuffer): Promise<Array<{ id: string; tag: string; events: number[] }>> {
  buffer.sealDue(Date.now(), true);
  const out = [];
  for (let c = buffer.take(); c; c = buffer.take()) {
    const entries = Buffer.concat(await buffer.read(c));
    out.push({ id: c.id.toString('hex'), tag: c.tag, events: decodeEntries(entries).map((e) => e.record.i as number) });
    await buffer.ack(c);
  }
  return out;
}

test('chunks are sealed by size, per tag, and delivered in order', async () => {
  const { buffer } = await DiskBuffer.open(opts());
  for (let i = 0; i < 100; i += 10) await buffer.append([chunk('a', i, 10), chunk('b', 1000 + i, 10)]);
  expect(buffer.stats().events).toBe(200);
  const got = await drain(buffer);
  expect(got.filter((c) => c.tag === 'a').flatMap((c) => c.events)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  expect(got.filter((c) => c.tag === 'b').flatMap((c) => c.events)).toHaveLength(100);
  expect(got.length).toBeGreaterThan(2);
  expect(buffer.stats()).toMatchObject({ bytes: 0, events: 0, chunks: 0 });
  expect(chunkFiles()).toEqual([]);
  await buffer.close();
  expect(bufferFiles()).toEqual([]);
});

test('restart recovers every appended event with the same chunk ids', async () => {
  const first = (await DiskBuffer.open(opts())).buffer;
  await first.append([chunk('a', 0, 30)]);
  first.sealDue(Date.now(), true);
  const before = first.take();
  expect(before).not.toBeNull();
  first.release(before!, 0);
  await first.append([chunk('a', 30, 5)]); // left open: as after kill -9
  // no close(): simulate a crash by opening the directory again
  const { buffer, recovered } = await DiskBuffer.open(opts());
  expect(recovered.reduce((n, r) => n + r.events, 0)).toBe(35);
  const got = await drain(buffer);
  expect(got.flatMap((c) => c.events).sort((a, b) => a - b)).toEqual(Array.from({ length: 35 }, (_, i) => i));
  expect(got.map((c) => c.id)).toContain(before!.id.toString('hex'));
});

test('a torn tail is cut off and reported; complete records are kept', async () => {
  const first = (await DiskBuffer.open(opts())).buffer;
  await first.append([chunk('a', 0, 3)]);
  await first.append([chunk('a', 3, 3)]);
  const [file] = chunkFiles();
  appendFileSync(join(dir, file), Buffer.from([0, 0, 1, 0, 1, 2, 3, 4, 5])); // half a record
  const { buffer, recovered } = await DiskBuffer.open(opts());
  expect(recovered[0]).toMatchObject({ events: 6, skippedBytes: 9 });
  expect(recovered[0].problem).toMatch(/torn record/);
  expect((await drain(buffer)).flatMap((c) => c.events)).toEqual([0, 1, 2, 3, 4, 5]);
});

test('a corrupt record stops recovery of that file at the last good record', async () => {
  const first = (await DiskBuffer.open(opts())).buffer;
  await first.append([chunk('a', 0, 3)]);
  const [file] = chunkFiles();
  appendFileSync(join(dir, file), Buffer.from([0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]));
  const { buffer, recovered } = await DiskBuffer.open(opts());
  expect(recovered[0].problem).toMatch(/checksum mismatch/);
  expect((await drain(buffer)).flatMap((c) => c.events)).toEqual([0, 1, 2]);
});

test('empty chunk files (spares made ahead of time) are removed on start, not reported', async () => {
  const first = (await DiskBuffer.open(opts())).buffer;
  await first.append([chunk('a', 0, 2)]);
  writeFileSync(join(dir, `${'cd'.repeat(16)}.chunk`), '');
  const { buffer, recovered } = await DiskBuffer.open(opts());
  expect(recovered.filter((r) => r.problem)).toEqual([]);
  expect(recovered.map((r) => r.events)).toEqual([2]);
  expect(readdirSync(dir)).not.toContain(`${'cd'.repeat(16)}.chunk`);
  expect((await drain(buffer)).flatMap((c) => c.events)).toEqual([0, 1]);
  await buffer.close();
});

test('an unreadable file is set aside and does not stop the others', async () => {
  const first = (await DiskBuffer.open(opts())).buffer;
  await first.append([chunk('a', 0, 2)]);
  writeFileSync(join(dir, `${'ab'.repeat(16)}.chunk`), 'garbage');
  const { buffer, recovered } = await DiskBuffer.open(opts());
  expect(recovered.find((r) => r.problem?.includes('corrupt'))).toBeDefined();
  expect((await drain(buffer)).flatMap((c) => c.events)).toEqual([0, 1]);
  expect(readdirSync(dir).some((f) => f.endsWith('.corrupt'))).toBe(true);
});

test('block: an append over the limit waits until an ack frees space', async () => {
  const { buffer } = await DiskBuffer.open(opts({ maxBytes: 1024 * 1024, chunkLimitBytes: 100 * 1024 }));
  const big = () => chunk('a', 0, 4000); // ~280 KB
  await buffer.append([big()]);
  await buffer.append([big()]);
  await buffer.append([big()]);
  expect(buffer.isFull()).toBe(false);
  let done = false;
  const pending = buffer.append([big()]).then(() => {
    done = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  expect(done).toBe(false);
  buffer.sealDue(Date.now(), true);
  const c = buffer.take();
  await buffer.ack(c!);
  await pending;
  expect(done).toBe(true);
});

test('drop_oldest: the oldest sealed chunks go, counted', async () => {
  const buffer = new MemoryBuffer(
    { maxBytes: 1024 * 1024, chunkLimitBytes: 100 * 1024, flushIntervalMs: 60_000, overflow: 'drop_oldest' },
    ACKED_IDS,
  );
  const dropped: number[] = [];
  buffer.onDrop = (c) => dropped.push(c.count);
  for (let i = 0; i < 6; i++) await buffer.append([chunk('a', i * 4000, 4000)]);
  expect(buffer.stats().droppedEvents).toBeGreaterThan(0);
  expect(dropped.reduce((a, b) => a + b, 0)).toBe(buffer.stats().droppedEvents);
  expect(buffer.stats().bytes).toBeLessThanOrEqual(1024 * 1024);
  const left = (await drain(buffer)).flatMap((c) => c.events);
  expect(left.length + buffer.stats().droppedEvents).toBe(24000);
  expect(left[left.length - 1]).toBe(23999); // the newest survived
});

test('fsync always: the append that fills (and seals) a chunk resolves only after its fdatasync completed', async () => {
  const { buffer } = await DiskBuffer.open(opts({ fsync: 'always', chunkLimitBytes: 4096 }));
  for (let round = 0; round < 3; round++) {
    const before = syncs.completed;
    await buffer.append([chunk('a', round * 100, 100)]); // ~7 KB: over the chunk limit, sealed in this append
    expect(buffer.stats().chunks).toBe(round + 1);
    expect(syncs.completed).toBeGreaterThan(before);
  }
  await buffer.close();
});

test("a group's event writes and its chunk ids' write come back to back; the write cache's copies follow", async () => {
  // What a kill -9 between the two syscalls costs (events kept, their ids forgotten: a resend is stored again) grows
  // with the time between them, so nothing but the writes sits there.
  const log: string[] = [];
  const classify = (fd: number) => {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    return target.endsWith(JOURNAL_FILE) ? 'ids' : target.endsWith('.chunk') ? 'events' : target;
  };
  const fs: Filesystem = {
    ...countingFs,
    writevSync: (fd, buffers, position) => {
      log.push(classify(fd));
      return realFilesystem.writevSync(fd, buffers, position);
    },
  };
  const remember = WriteCache.prototype.remember;
  const spy = jest.spyOn(WriteCache.prototype, 'remember').mockImplementation(function (this: WriteCache, key, first, payload) {
    log.push('cache');
    remember.call(this, key, first, payload);
  });
  try {
    // 16 KiB chunks: each append (~2.8 KB, eight of them at least the limit) is one the cache keeps.
    const { buffer } = await DiskBuffer.open(opts({ fs, chunkLimitBytes: 16 * 1024 }));
    const cached = jest.spyOn(WriteCache.prototype, 'get');
    log.length = 0;
    // Two tags with client chunk ids in one turn: one group, two chunk writes, one id write.
    await Promise.all([
      buffer.append([{ ...chunk('a', 0, 40), chunkId: 'id-a' }]),
      buffer.append([{ ...chunk('b', 0, 40), chunkId: 'id-b' }]),
    ]);
    expect(log).toEqual(['events', 'events', 'ids', 'cache', 'cache']);
    // and what the cache kept is what was written
    buffer.sealDue(Date.now(), true);
    const got: number[] = [];
    for (let c = buffer.take(); c; c = buffer.take()) {
      got.push(...decodeEntries(Buffer.concat(await buffer.read(c))).map((e) => e.record.i as number));
      await buffer.ack(c);
    }
    // both chunks were sent from the cache, whose copies were made after the writes (the parts' memory is the caller's)
    expect(cached.mock.results.map((r) => r.value !== undefined)).toEqual([true, true]);
    cached.mockRestore();
    expect(got.sort((x, y) => x - y)).toEqual(
      [...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 40 }, (_, i) => i)].sort((x, y) => x - y),
    );
    await buffer.close();
  } finally {
    spy.mockRestore();
  }
});

test("a write cache copy that fails after the group's ids were recorded undoes nothing: the append stands, and the chunk is read from its file", async () => {
  const spy = jest.spyOn(WriteCache.prototype, 'remember').mockImplementationOnce(() => {
    throw new RangeError('Array buffer allocation failed');
  });
  try {
    const { buffer } = await DiskBuffer.open(opts({ chunkLimitBytes: 64 * 1024, memoryCacheBytes: 4 * 1024 * 1024 }));
    const reported: string[] = [];
    buffer.onIoError = (op, err) => reported.push(`${op}: ${err.message}`);
    const sent = { ...chunk('a', 0, 1000), chunkId: 'big-1' }; // ~80 KB: a payload the cache keeps
    await buffer.append([sent]);
    expect(spy).toHaveBeenCalled();
    expect(reported).toEqual(['cache: Array buffer allocation failed']);
    expect(buffer.stats().events).toBe(1000);
    // acked and stored once: the resend is left out
    expect(await buffer.skipAcked([sent])).toEqual([]);
    buffer.sealDue(Date.now(), true);
    const c = buffer.take();
    expect(decodeEntries(Buffer.concat(await buffer.read(c as SealedChunk))).map((e) => e.record.i)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    );
    await buffer.close();
  } finally {
    spy.mockRestore();
  }
});

test('fsync always: append resolves after fdatasync', async () => {
  const { buffer } = await DiskBuffer.open(opts({ fsync: 'always' }));
  await buffer.append([chunk('a', 0, 10)]);
  expect(buffer.stats().events).toBe(10);
  await buffer.close();
});

describe.each([
  ['no memory cache', 0],
  ['a cache smaller than a chunk (chunks spill to reads mid-way)', 3000],
  ['a cache holding everything', 8 * 1024 * 1024],
])('with %s', (_name, memoryCacheBytes) => {
  test('every event is delivered once, in order, and files and descriptors are released', async () => {
    const { buffer } = await DiskBuffer.open(opts({ memoryCacheBytes }));
    // Parts that are small views into one large buffer, as socket reads hand them over.
    const big = Buffer.concat(Array.from({ length: 400 }, (_, i) => encodeEntry(t, { i, pad: 'x'.repeat(50) })));
    const sizes: number[] = [];
    let pos = 0;
    for (let i = 0; i < 400; i += 20) {
      const end =
        i + 20 === 400
          ? big.length
          : pos + Buffer.concat(Array.from({ length: 20 }, (_, j) => encodeEntry(t, { i: i + j, pad: 'x'.repeat(50) }))).length;
      sizes.push(end - pos);
      await buffer.append([{ tag: 'v', entries: big.subarray(pos, end), count: 20, mode: 'packed' }]);
      pos = end;
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(big.length);
    // A resend reads the same bytes again: read twice before acking.
    buffer.sealDue(Date.now(), true);
    const events: number[] = [];
    for (let c = buffer.take(); c; c = buffer.take()) {
      const first = Buffer.concat(await buffer.read(c));
      const again = Buffer.concat(await buffer.read(c));
      expect(again.equals(first)).toBe(true);
      for (const part of await buffer.read(c)) expect(part.buffer).not.toBe(big.buffer); // no view into the "socket read"
      events.push(...decodeEntries(first).map((e) => e.record.i as number));
      await buffer.ack(c);
    }
    expect(events).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(chunkFiles()).toEqual([]);
    expect(descriptorsIn(dir).length).toBeGreaterThan(0); // the journal at least: the check below can fail
    await buffer.close();
    expect(bufferFiles()).toEqual([]);
    expect(descriptorsIn(dir)).toEqual([]);
  });

  test('chunks of many small appends (Message mode) read back whole, chunk after chunk', async () => {
    const { buffer } = await DiskBuffer.open(opts({ memoryCacheBytes, chunkLimitBytes: 8 * 1024 }));
    for (let i = 0; i < 600; i += 3) await buffer.append([chunk(`m${i % 2}`, i, 3)]);
    buffer.sealDue(Date.now(), true);
    const byTag = new Map<string, number[]>();
    let chunks = 0;
    for (let c = buffer.take(); c; c = buffer.take()) {
      const parts = await buffer.read(c);
      const events = decodeEntries(Buffer.concat(parts)).map((e) => e.record.i as number);
      expect(events).toHaveLength(c.count);
      byTag.set(c.tag, [...(byTag.get(c.tag) ?? []), ...events]);
      await buffer.ack(c);
      chunks++;
    }
    expect(chunks).toBeGreaterThan(4);
    const all = [...(byTag.get('m0') ?? []), ...(byTag.get('m1') ?? [])].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 600 }, (_, i) => i));
    await buffer.close();
  });

  test('appends of many parts (joined into one record, in memory reused by the next write) and reused request memory read back intact', async () => {
    const { buffer } = await DiskBuffer.open(opts({ memoryCacheBytes, chunkLimitBytes: 8 * 1024 }));
    // One request buffer for every append, overwritten once a round's appends settled, as the forward input reuses
    // its pooled buffers; a round's three appends (one per tag) land in one group commit: three joins in one commit.
    const request = Buffer.allocUnsafe(64 * 1024);
    const sent = new Map<string, number[]>();
    for (let round = 0; round < 8; round++) {
      let pos = 0;
      const appends: Array<Promise<void>> = [];
      for (let a = 0; a < 3; a++) {
        const tag = `j${a}`;
        const parts: ForwardChunk[] = [];
        for (let p = 0; p < 20; p++) {
          const i = round * 1000 + a * 100 + p;
          const entries = encodeEntry(t, { i, pad: 'y'.repeat(40) });
          entries.copy(request, pos);
          parts.push({ tag, entries: request.subarray(pos, pos + entries.length), count: 1, mode: 'message' });
          pos += entries.length;
          sent.set(tag, [...(sent.get(tag) ?? []), i]);
        }
        appends.push(buffer.append(parts));
      }
      await Promise.all(appends);
      request.fill(0xc1); // the next request overwrites the memory
    }
    const got = await drain(buffer);
    const byTag = new Map<string, number[]>();
    for (const c of got) byTag.set(c.tag, [...(byTag.get(c.tag) ?? []), ...c.events]);
    expect(byTag).toEqual(sent);
    await buffer.close();
  });

  test('after a crash (no close) a restart recovers what was not acked, from the files', async () => {
    const first = (await DiskBuffer.open(opts({ memoryCacheBytes }))).buffer;
    for (let i = 0; i < 200; i += 50) await first.append([chunk('r', i, 50)]);
    first.sealDue(Date.now(), true);
    const c = first.take();
    if (!c) throw new Error('no chunk');
    await first.ack(c);
    const { buffer, recovered } = await DiskBuffer.open(opts({ memoryCacheBytes }));
    const got = (await drain(buffer)).flatMap((x) => x.events);
    expect(got.length + c.count).toBe(200);
    expect(recovered.reduce((n, r) => n + r.events, 0)).toBe(got.length);
    expect(new Set(got).size).toBe(got.length);
    await buffer.close();
    await first.close();
  });
});
