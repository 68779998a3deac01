import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realFilesystem } from '@tributary/core';
import { EventTime, type ForwardChunk, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { AckedChunkIds, JOURNAL_FILE, LEGACY_JOURNAL_FILE, SLOT_BYTES, hashKey } from './acked-chunk-ids';
import { resendKey } from './base-buffer';
import { DiskBuffer, type DiskBufferOptions } from './disk-buffer';
import { MemoryBuffer } from './memory-buffer';
import { frame } from './records';

const t = new EventTime(1700000000, 0);
/** The journal reports no failure in these tests: one would fail them. */
const unexpected = (op: string, err: Error): never => {
  throw new Error(`unexpected journal failure (${op}): ${err.message}`);
};
const chunk = (id: string | undefined, from: number, n: number, tag = 'a'): ForwardChunk => ({
  tag,
  entries: Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(t, { i: from + i }))),
  count: n,
  mode: 'packed',
  chunkId: id,
});

let dir: string;
const opened: DiskBuffer[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-ids-'));
});
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
});

async function open(o: Partial<DiskBufferOptions> = {}): Promise<DiskBuffer> {
  const { buffer } = await DiskBuffer.open({
    path: dir,
    maxBytes: 10 * 1024 * 1024,
    chunkLimitBytes: 64 * 1024,
    flushIntervalMs: 60_000,
    overflow: 'block',
    fsync: 'interval',
    fsyncIntervalMs: 1000,
    memoryCacheBytes: 0,
    ackedIds: { maxEntries: 1000, ttlMs: 60_000 },
    ...o,
  });
  opened.push(buffer);
  return buffer;
}

async function drainEvents(buffer: DiskBuffer | MemoryBuffer): Promise<number[]> {
  buffer.sealDue(Date.now(), true);
  const out: number[] = [];
  for (let c = buffer.take(); c; c = buffer.take()) {
    out.push(...decodeEntries(Buffer.concat(await buffer.read(c))).map((e) => e.record.i as number));
    await buffer.ack(c);
  }
  return out;
}

test('a resend of an acked chunk is accepted again and stored once, also after a restart', async () => {
  const first = await open();
  await first.append([chunk('c1', 0, 10), chunk('c2', 10, 10)]);
  await first.append([chunk('c1', 0, 10)]);
  expect(await first.skipAcked([chunk('c2', 10, 10), chunk('c3', 20, 5), chunk(undefined, 30, 1)])).toHaveLength(2);
  expect(first.stats().events).toBe(20);
  await first.close();

  const second = await open();
  await second.append([chunk('c2', 10, 10), chunk('c3', 20, 5)]);
  expect(await drainEvents(second)).toEqual(Array.from({ length: 25 }, (_, i) => i));
});

test('a resend arriving while its first append is in progress is stored once', async () => {
  const buffer = await open({ fsync: 'always' });
  const firstTry = buffer.append([chunk('slow', 0, 50)]);
  const resend = buffer.append([chunk('slow', 0, 50)]);
  await Promise.all([firstTry, resend]);
  expect(await drainEvents(buffer)).toHaveLength(50);
});

test('the window is bounded by count and by age', async () => {
  const mem = new MemoryBuffer(
    { maxBytes: 1 << 20, chunkLimitBytes: 1 << 16, flushIntervalMs: 60_000, overflow: 'block' },
    { maxEntries: 3, ttlMs: 60_000 },
  );
  for (let i = 0; i < 5; i++) await mem.append([chunk(`m${i}`, i, 1)]);
  // m0 and m1 were forgotten (count): their resends are stored again; m2..m4 are not.
  const fresh = await mem.skipAcked([0, 1, 2, 3, 4].map((i) => chunk(`m${i}`, i, 1)));
  expect(fresh.map((c) => c.chunkId)).toEqual(['m0', 'm1']);

  // max_entries 0 turns the memory off: nothing journaled, every resend stored again.
  const off = await open({ ackedIds: { maxEntries: 0, ttlMs: 60_000 } });
  await off.append([chunk('z', 0, 1)]);
  await off.append([chunk('z', 0, 1)]);
  expect(off.stats().events).toBe(2);
  expect(statSync(join(dir, JOURNAL_FILE)).size).toBe(0);

  const ids = AckedChunkIds.inMemory({ maxEntries: 100, ttlMs: 1000 });
  ids.record(['old'], 10_000);
  expect(ids.has('old', 10_500)).toBe(true);
  expect(ids.has('old', 11_001)).toBe(false);
});

test('the journal is a ring of maxEntries slots, so it stays bounded and a restart still knows the latest ids', async () => {
  const window = { maxEntries: 50, ttlMs: 60_000 };
  const first = await open({ ackedIds: window });
  for (let i = 0; i < 400; i++) await first.append([chunk(`id-${i}`, i, 1)]);
  await first.close();
  // 400 records written, in 50 slots.
  expect(statSync(join(dir, JOURNAL_FILE)).size).toBe(50 * SLOT_BYTES);

  const ids = await AckedChunkIds.open(realFilesystem, dir, window, unexpected);
  expect(ids.size).toBe(50);
  const key = (i: number) => resendKey(chunk(`id-${i}`, i, 1));
  expect(ids.has(key(399))).toBe(true);
  expect(ids.has(key(350))).toBe(true);
  expect(ids.has(key(349))).toBe(false);
  ids.closeSync();
});

test('the same id on a different chunk (another client) is not taken for a resend', async () => {
  const buffer = await open();
  await buffer.append([chunk('same', 0, 10)]);
  await buffer.append([chunk('same', 100, 12)]);
  await buffer.append([chunk('same', 200, 10, 'other-tag')]);
  expect(await drainEvents(buffer)).toHaveLength(32);
});

test('a chunk handed over in pieces (its id on the last) is recognised when resent whole', async () => {
  const buffer = await open();
  const whole = chunk('split', 0, 30);
  const [fresh] = await buffer.skipAcked([whole]);
  // The input splits it: two pieces without the id, the last with it and the whole chunk's key hash (splitChunk's way).
  const pieces = [chunk(undefined, 0, 10), chunk(undefined, 10, 10), { ...chunk('split', 20, 10), resendHash: fresh.resendHash }];
  for (const p of pieces) await buffer.append([p]);
  expect(fresh).toBe(whole);
  expect(await buffer.skipAcked([chunk('split', 0, 30)])).toEqual([]);
  expect(await drainEvents(buffer)).toHaveLength(30);
});

test('the same chunk twice in one batch (a resend in the read of its first send) is stored once, at skipAcked and at append', async () => {
  const buffer = await open();
  expect(await buffer.skipAcked([chunk('dup', 0, 10), chunk('dup', 0, 10), chunk('other', 10, 5)])).toHaveLength(2);
  // a batch skipAcked did not see (or saw before the first was stored): append leaves the second copy out
  expect(await buffer.append([chunk('dup2', 20, 10), chunk('dup2', 20, 10)])).toBe(1);
  // the same id with another tag is another chunk
  expect(await buffer.append([chunk('dup3', 30, 3), chunk('dup3', 40, 3, 'b')])).toBe(0);
  expect((await drainEvents(buffer)).sort((a, b) => a - b)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 40, 41, 42]);
});

test('a piece with no entries (its events all filtered out) stores nothing but remembers its id, under both fsync policies and after a restart', async () => {
  for (const fsync of ['interval', 'always'] as const) {
    const buffer = await open({ fsync });
    const whole = chunk(`emptied-${fsync}`, 0, 20);
    await buffer.skipAcked([whole]);
    await buffer.append([chunk(undefined, 0, 10)]);
    // the emptied last piece, of a tag with no open chunk: no chunk is made for it
    await buffer.append([{ ...chunk(whole.chunkId, 10, 0, 'b'), resendHash: whole.resendHash }]);
    expect(await buffer.skipAcked([whole])).toEqual([]);
    expect(buffer.stats()).toMatchObject({ events: 10, chunks: 1 });
    await buffer.close();
    const reopened = await open({ fsync });
    expect(await reopened.skipAcked([whole])).toEqual([]);
    expect(await drainEvents(reopened)).toHaveLength(10);
    await reopened.close();
  }
});

test('the ring forgets the oldest first, also for batches that wrap its end, and a restart keeps its order', async () => {
  const window = { maxEntries: 7, ttlMs: 60_000 };
  const first = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, 1000);
  // Batches of 3 over 7 slots: every third batch wraps the end of the ring.
  for (let b = 0; b < 10; b++)
    first.record(
      [0, 1, 2].map((i) => `k${b * 3 + i}`),
      1000,
    );
  first.closeSync();
  expect(statSync(join(dir, JOURNAL_FILE)).size).toBe(7 * SLOT_BYTES);
  const known = (ids: AckedChunkIds, from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => from + i).filter((i) => ids.has(`k${i}`, 1000));
  const second = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, 1000);
  expect(known(second, 0, 30)).toEqual([23, 24, 25, 26, 27, 28, 29]);
  // After the restart the oldest (k23) is still the first to go.
  second.record(['n0', 'n1'], 1000);
  expect(known(second, 0, 30)).toEqual([25, 26, 27, 28, 29]);
  expect(second.has('n1', 1000)).toBe(true);
  second.closeSync();
});

test('a torn or blank slot is skipped at open; the rest are remembered', async () => {
  const window = { maxEntries: 10, ttlMs: 60_000 };
  const first = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, 1000);
  first.record(['a', 'b', 'c'], 1000);
  first.closeSync();
  const path = join(dir, JOURNAL_FILE);
  const bytes = readFileSync(path);
  bytes[SLOT_BYTES + 5] ^= 0xff; // b's hash
  writeFileSync(path, Buffer.concat([bytes, Buffer.alloc(SLOT_BYTES), Buffer.alloc(7)])); // a blank slot and a torn tail
  const second = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, 1000);
  expect(['a', 'b', 'c'].map((id) => second.has(id, 1000))).toEqual([true, false, true]);
  expect(second.size).toBe(2);
  second.closeSync();
});

test("an earlier version's JSON journal is read once into the ring, then removed", async () => {
  const legacy = join(dir, LEGACY_JOURNAL_FILE);
  const rec = (t: number, ids: string[]) => frame([Buffer.from(JSON.stringify({ t, ids }))]);
  writeFileSync(legacy, Buffer.concat([...rec(100, ['old']), ...rec(1000, ['x', 'y'])]));
  const ids = await AckedChunkIds.open(realFilesystem, dir, { maxEntries: 10, ttlMs: 1000 }, unexpected, 1200);
  expect(['old', 'x', 'y'].map((id) => ids.has(id, 1200))).toEqual([false, true, true]); // 'old' aged out
  expect(existsSync(legacy)).toBe(false);
  ids.closeSync();
  const again = await AckedChunkIds.open(realFilesystem, dir, { maxEntries: 10, ttlMs: 1000 }, unexpected, 1200);
  expect(['x', 'y'].map((id) => again.has(id, 1200))).toEqual([true, true]);
  again.closeSync();
});

test('the table agrees with a plain model under many inserts, repeats and evictions', () => {
  const max = 300;
  const ids = AckedChunkIds.inMemory({ maxEntries: max, ttlMs: 1e12 });
  const ring: string[] = [];
  let seed = 7;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  for (let step = 0; step < 20_000; step++) {
    const batch = Array.from({ length: 1 + (rand() % 5) }, () => `id-${rand() % 900}`);
    ids.record(batch, 1);
    ring.push(...batch);
    if (ring.length > max) ring.splice(0, ring.length - max);
    if (step % 97 === 0) {
      const live = new Set(ring);
      const wrong = Array.from({ length: 900 }, (_, k) => `id-${k}`).filter((id) => ids.has(id, 1) !== live.has(id));
      expect(wrong).toEqual([]);
      expect(ids.size).toBe(live.size);
    }
  }
});

test('hashes that share their first word (the word the table keeps) are told apart by the rest, through evictions', () => {
  const ids = AckedChunkIds.inMemory({ maxEntries: 4, ttlMs: 1e12 });
  const h = (a: number, b: number) => Uint32Array.from([0xdeadbeef, a, b, a ^ b]);
  const record = (x: Uint32Array) => ids.recordHashes(x, 1, 1);
  const has = (x: Uint32Array) => ids.hasHash(x, 0, 1);
  const [a, b, c, d, e] = [h(1, 2), h(3, 4), h(5, 6), h(7, 8), h(9, 10)];
  for (const x of [a, b, c]) record(x);
  expect([a, b, c, d].map(has)).toEqual([true, true, true, false]);
  record(d);
  record(e); // the ring holds 4: a, the oldest, goes; the others, on the same probe run, stay found
  expect([a, b, c, d, e].map(has)).toEqual([false, true, true, true, true]);
  expect(ids.size).toBe(4);
});

test('ids recorded right after they were checked (hashes taken from the miss memo) are remembered as if hashed afresh', () => {
  const ids = AckedChunkIds.inMemory({ maxEntries: 100_000, ttlMs: 1e12 }); // more than is recorded: nothing is forgotten
  const model = new Set<string>();
  let seed = 11;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  for (let step = 0; step < 3000; step++) {
    const checked = Array.from({ length: 1 + (rand() % 6) }, () => `k-${rand() % 700}`);
    for (const k of checked) expect(ids.has(k, 1)).toBe(model.has(k));
    // What the buffer records: the checked keys in order, a subset, a reordering, or keys never checked.
    const pick = rand() % 4;
    const recorded =
      pick === 0 ? checked : pick === 1 ? checked.slice(1) : pick === 2 ? [...checked].reverse() : [`new-${rand() % 700}`, ...checked];
    ids.record(recorded, 1);
    for (const k of recorded) model.add(k);
  }
  const wrong = [...model].filter((k) => !ids.has(k, 1));
  expect(wrong).toEqual([]);
});

test('a key hashes as earlier versions journaled it (MurmurHash3 x86_128 of its UTF-16 code units), so a restart after an upgrade still knows the acked ids', () => {
  const out = new Uint32Array(4);
  const vectors: Array<[string, number[]]> = [
    ['', [0xf7bed5a1, 0x5b576a1c, 0x5b576a1c, 0x5b576a1c]],
    ['a', [0x2511c556, 0xa5d9f9a3, 0xa5d9f9a3, 0xa5d9f9a3]],
    ['abcdefg', [0xda1615a2, 0x93cfb7c3, 0x6479630d, 0x0a98dc61]],
    ['abcdefgh', [0x0ccfb6e3, 0x6887339c, 0x6f4b08c2, 0xc88cb3c0]],
    ['abcdefghi', [0xbf4831f8, 0x4587d277, 0x0a665528, 0xde310060]],
    ['a000000000000000000001zz\nbench.message\n1\n237', [0xed30c8ee, 0x0faf5981, 0x6e4df976, 0xee3e577b]],
    ['é-ü\u{1F600}x\napp\n3\n1000', [0x23871302, 0xb3f0f8ce, 0xeb6ac28c, 0x81d2d90e]],
  ];
  for (const [key, want] of vectors) {
    hashKey(key, out);
    expect([...out]).toEqual(want);
  }
  // A long key after short ones (the scratch grows) hashes as alone.
  const long = 'k'.repeat(5000);
  hashKey(long, out);
  const again = new Uint32Array(8);
  hashKey(long, again, 1);
  expect([...again.subarray(4)]).toEqual([...out]);
});

test('open merges ids found beside recovered events with the journal by ack time: known and aged-out ones are not added, and the newest are kept', async () => {
  const window = { maxEntries: 4, ttlMs: 60_000 };
  const now = 1_000_000_000;
  const hashes = (keys: string[]) => {
    const out = new Uint32Array(4 * keys.length);
    keys.forEach((k, i) => hashKey(k, out, i));
    return out;
  };
  const first = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, now - 100);
  first.record(['j-old'], now - 90);
  first.record(['known'], now - 20);
  first.record(['j-new'], now - 10); // the newest ack: a chunk already delivered, its file gone
  first.closeSync();
  const recovered = [
    { hashes: hashes(['aged-1', 'aged-2']), n: 2, at: now - 60_000 }, // past the window
    { hashes: hashes(['buffered-1', 'known']), n: 2, at: now - 50 }, // still buffered, older than j-new
    { hashes: hashes(['crash']), n: 1, at: now - 5 }, // the group whose journal write the crash cut off
  ];
  const ids = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, now, recovered);
  // Newest 4 by ack time: buffered-1 (-50), known (-20), j-new (-10), crash (-5); j-old (-90) is pushed out, not j-new.
  expect(ids.recoveredFromChunks).toBe(2);
  expect(['buffered-1', 'known', 'j-new', 'crash'].map((k) => ids.has(k, now))).toEqual([true, true, true, true]);
  expect(['j-old', 'aged-1', 'aged-2'].map((k) => ids.has(k, now))).toEqual([false, false, false]);
  // remembered with the time they were acked, and journaled: the next open knows them without the chunk files
  expect(ids.has('crash', now - 5 + 60_000)).toBe(false);
  ids.closeSync();
  const again = await AckedChunkIds.open(realFilesystem, dir, window, unexpected, now);
  expect(again.recoveredFromChunks).toBe(0);
  expect(['buffered-1', 'known', 'j-new', 'crash'].map((k) => again.has(k, now))).toEqual([true, true, true, true]);
  again.closeSync();
});
