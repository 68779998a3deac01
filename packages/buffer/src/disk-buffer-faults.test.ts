/**
 * The disk buffer under filesystem faults, injected through the filesystem
 * seam on real files: every append either resolves with its events readable
 * back (now and after a restart) or rejects with nothing of it kept, and the
 * buffer takes events again once the fault clears (except after a failed
 * fdatasync, which stops appends until a restart).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem } from '@tributary/core';
import { EventTime, type ForwardChunk, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { DiskBuffer, type DiskBufferOptions } from './disk-buffer';

const t = new EventTime(1700000000, 0);
const chunk = (tag: string, from: number, n: number, chunkId?: string): ForwardChunk => ({
  tag,
  entries: Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(t, { i: from + i, pad: 'y'.repeat(40) }))),
  count: n,
  mode: 'packed',
  chunkId,
});

let dir: string;
let fs: FaultyFilesystem;
let ioErrors: Array<{ op: string; code?: string }>;
const opened: DiskBuffer[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-bufault-'));
  fs = new FaultyFilesystem();
  ioErrors = [];
});
afterEach(async () => {
  fs.clear();
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
    fsyncIntervalMs: 50,
    memoryCacheBytes: 1024 * 1024,
    ackedIds: { maxEntries: 1000, ttlMs: 60_000 },
    fs,
    ...o,
  });
  buffer.onIoError = (op, err) => ioErrors.push({ op, code: (err as NodeJS.ErrnoException).code });
  opened.push(buffer);
  return buffer;
}

async function drainEvents(buffer: DiskBuffer): Promise<number[]> {
  buffer.sealDue(Date.now(), true);
  const out: number[] = [];
  for (let c = buffer.take(); c; c = buffer.take()) {
    out.push(...decodeEntries(Buffer.concat(await buffer.read(c))).map((e) => e.record.i as number));
    await buffer.ack(c);
  }
  return out;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

test('ENOSPC on the first write of a new chunk leaves no half-made chunk, and appends flow again once space returns', async () => {
  const buffer = await open();
  fs.inject({ ops: ['writev'], path: '.chunk', code: 'ENOSPC' });
  await expect(buffer.append([chunk('a', 0, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  await expect(buffer.append([chunk('a', 10, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  expect(buffer.problem()).toMatch(/ENOSPC/);
  expect(buffer.stats().events).toBe(0);
  expect(ioErrors.some((e) => e.op === 'write' && e.code === 'ENOSPC')).toBe(true);

  fs.clear();
  await buffer.append([chunk('a', 20, 10)]);
  await buffer.append([chunk('a', 30, 10)]);
  expect(buffer.problem()).toBeNull();
  await buffer.close();
  // What a restart reads back: exactly the accepted events, no file set aside.
  const again = await open();
  expect(await drainEvents(again)).toEqual(range(20, 20));
  expect(readdirSync(dir).filter((f) => f.endsWith('.corrupt'))).toEqual([]);
});

test('a batch whose first write fails is refused whole, and the next batch continues the same chunks', async () => {
  const buffer = await open();
  await buffer.append([chunk('a', 0, 5), chunk('b', 100, 5)]);
  fs.inject({ ops: ['writev'], code: 'EIO', times: 1 });
  await expect(buffer.append([chunk('a', 5, 5), chunk('b', 105, 5)])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  await buffer.append([chunk('a', 10, 5), chunk('b', 110, 5)]);
  await buffer.close();
  const again = await open();
  const got = await drainEvents(again);
  expect(got.filter((i) => i < 100)).toEqual([...range(0, 5), ...range(10, 5)]);
  expect(got.filter((i) => i >= 100)).toEqual([...range(100, 5), ...range(110, 5)]);
});

test('a chunk write that writes nothing (writev returning 0) refuses the batch like EIO instead of spinning, and the next batch goes on', async () => {
  const buffer = await open();
  await buffer.append([chunk('a', 0, 5)]);
  jest.spyOn(fs, 'writevSync').mockImplementationOnce(() => 0); // before, the loop called again and went on
  await expect(buffer.append([chunk('a', 5, 5)])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  jest.restoreAllMocks();
  await buffer.append([chunk('a', 10, 5)]);
  await buffer.close();
  const again = await open();
  expect(await drainEvents(again)).toEqual([...range(0, 5), ...range(10, 5)]);
});

test('a write that fails after another tag of the same batch was written cuts that write off again', async () => {
  const buffer = await open();
  await buffer.append([chunk('a', 0, 5)]);
  // The batch writes a's record (existing chunk), then creates b's chunk: fail the second writev only.
  let calls = 0;
  const realWritev = fs.writevSync.bind(fs);
  jest.spyOn(fs, 'writevSync').mockImplementation((fd, bufs, pos) => {
    if (++calls === 2) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    return realWritev(fd, bufs, pos);
  });
  await expect(buffer.append([chunk('a', 5, 5, 'batch-1'), chunk('b', 100, 5, 'batch-1b')])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  jest.restoreAllMocks();
  expect(buffer.stats().events).toBe(5);
  // The client resends the refused batch: stored once.
  await buffer.append([chunk('a', 5, 5, 'batch-1'), chunk('b', 100, 5, 'batch-1b')]);
  await buffer.close();
  const again = await open();
  const got = await drainEvents(again);
  expect(got.filter((i) => i < 100)).toEqual(range(0, 10));
  expect(got.filter((i) => i >= 100)).toEqual(range(100, 5));
});

test('a failed fdatasync under fsync: interval stops appends until a restart', async () => {
  const buffer = await open({ fsyncIntervalMs: 20 });
  await buffer.append([chunk('a', 0, 10)]);
  fs.inject({ ops: ['fdatasync'], code: 'EIO' });
  // A tick may sync (and fail) between this batch's hand-off and its group commit, which then refuses it:
  // accepted or refused, what a restart delivers below is exactly what was accepted.
  const second = await buffer.append([chunk('a', 10, 10)]).then(
    () => true,
    (err: { code?: string }) => {
      expect(err.code).toBe('TRB_BUF_BROKEN');
      return false;
    },
  );
  const deadline = Date.now() + 2000;
  while (!buffer.problem() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(buffer.problem()).toMatch(/fdatasync failed/);
  expect(ioErrors.filter((e) => e.op === 'fdatasync')).toHaveLength(1);
  await expect(buffer.append([chunk('a', 20, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_BROKEN' });
  // Clearing the fault does not resume: a retried fdatasync can falsely succeed.
  fs.clear();
  await expect(buffer.append([chunk('a', 30, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_BROKEN' });
  // What was accepted is still delivered.
  expect(await drainEvents(buffer)).toEqual(range(0, second ? 20 : 10));
  await buffer.close();
  const again = await open();
  expect(again.problem()).toBeNull();
  await again.append([chunk('a', 40, 1)]);
});

test('a failed fdatasync under fsync: always refuses the append it was for', async () => {
  const buffer = await open({ fsync: 'always' });
  fs.inject({ ops: ['fdatasync'], code: 'EIO', times: 1 });
  await expect(buffer.append([chunk('a', 0, 10)])).rejects.toBeDefined();
  await expect(buffer.append([chunk('a', 10, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_BROKEN' });
  expect(buffer.problem()).toMatch(/fdatasync failed/);
});

test('a delivered chunk whose file cannot be deleted is acked all the same, reported, and deleted on a retry', async () => {
  const buffer = await open();
  await buffer.append([chunk('a', 0, 10)]);
  buffer.sealDue(Date.now(), true);
  const c = buffer.take();
  expect(c).not.toBeNull();
  fs.inject({ ops: ['unlink'], code: 'EIO', times: 1 });
  await expect(buffer.ack(c!)).resolves.toBeUndefined();
  expect(ioErrors).toContainEqual({ op: 'unlink', code: 'EIO' });
  expect(buffer.stats().chunks).toBe(0);
  const file = `${c!.id.toString('hex')}.chunk`;
  expect(readdirSync(dir)).toContain(file);
  const deadline = Date.now() + 5000;
  while (readdirSync(dir).includes(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(readdirSync(dir)).not.toContain(file);
});

test('a failed id journal write refuses the append and keeps none of its events', async () => {
  const buffer = await open();
  fs.inject({ ops: ['writev'], path: 'acked-chunk-ids', code: 'ENOSPC', times: 1 });
  await expect(buffer.append([chunk('a', 0, 10, 'j1')])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  expect(buffer.stats().events).toBe(0);
  await buffer.append([chunk('a', 0, 10, 'j1')]);
  await buffer.append([chunk('a', 0, 10, 'j1')]);
  expect(await drainEvents(buffer)).toEqual(range(0, 10));
});

test('under fsync: always an id is written only after its events are synced, and synced before the ack', async () => {
  const buffer = await open({ fsync: 'always' });
  const journal = (buffer as unknown as { ackedIds: { fd: number } }).ackedIds.fd;
  const calls: string[] = [];
  const writev = fs.writevSync.bind(fs);
  const fdatasync = fs.fdatasync.bind(fs);
  jest.spyOn(fs, 'writevSync').mockImplementation((fd, b, p) => {
    calls.push(`write ${fd === journal ? 'ids' : 'events'}`);
    return writev(fd, b, p);
  });
  jest.spyOn(fs, 'fdatasync').mockImplementation(async (fd) => {
    await fdatasync(fd);
    calls.push(`synced ${fd === journal ? 'ids' : 'events'}`);
  });
  await buffer.append([chunk('a', 0, 10, 'order')]);
  calls.push('acked');
  jest.restoreAllMocks();
  expect(calls).toEqual(['write events', 'synced events', 'write ids', 'synced ids', 'acked']);
});

test('under fsync: always a failed id record refuses the ack and keeps the synced events (the resend is stored again)', async () => {
  const buffer = await open({ fsync: 'always' });
  const syncsBefore = fs.failures.get('writev') ?? 0;
  fs.inject({ ops: ['writev'], path: 'acked-chunk-ids', code: 'ENOSPC', times: 1 });
  await expect(buffer.append([chunk('a', 0, 10, 'k1')])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  expect(fs.failures.get('writev')).toBe(syncsBefore + 1);
  // The events were stored and synced first: the resend is stored again (at-least-once), then remembered.
  await buffer.append([chunk('a', 0, 10, 'k1')]);
  await buffer.append([chunk('a', 0, 10, 'k1')]);
  expect(await drainEvents(buffer)).toEqual([...range(0, 10), ...range(0, 10)]);
});

test('batches of one event-loop turn are written together (one write per chunk, one journal write), and a failed group write refuses each of them with nothing kept', async () => {
  const buffer = await open();
  await buffer.append([chunk('a', 0, 5, 'first')]);
  const writes: string[] = [];
  const realWritev = fs.writevSync.bind(fs);
  jest.spyOn(fs, 'writevSync').mockImplementation((fd, bufs, pos) => {
    writes.push(pos === undefined ? 'chunk' : 'journal');
    return realWritev(fd, bufs, pos);
  });
  // Four connections' reads in one turn: one write to a's chunk and one journal write for all four.
  await Promise.all(range(1, 4).map((k) => buffer.append([chunk('a', k * 10, 5, `id-${k}`)])));
  expect(writes.sort()).toEqual(['chunk', 'journal']);
  jest.restoreAllMocks();

  fs.inject({ ops: ['writev'], path: '.chunk', code: 'EIO', times: 1 });
  const results = await Promise.allSettled(range(5, 3).map((k) => buffer.append([chunk('a', k * 10, 5, `id-${k}`)])));
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  expect(buffer.stats().events).toBe(25);
  // Their resends are stored once; the ids of the refused group were not remembered.
  await Promise.all(range(5, 3).map((k) => buffer.append([chunk('a', k * 10, 5, `id-${k}`)])));
  await Promise.all(range(1, 7).map((k) => buffer.append([chunk('a', k * 10, 5, `id-${k}`)]))); // all acked: none stored again
  await buffer.close();
  const again = await open();
  expect(await drainEvents(again)).toEqual([
    ...range(0, 5),
    ...range(10, 5),
    ...range(20, 5),
    ...range(30, 5),
    ...range(40, 5),
    ...range(50, 5),
    ...range(60, 5),
    ...range(70, 5),
  ]);
});

test('a group of batches larger than the chunk limit is cut into chunks as one batch at a time would be', async () => {
  const buffer = await open({ chunkLimitBytes: 4 * 1024 });
  // 12 batches of ~1.1 KB of one tag in one turn: a chunk takes batches until it holds 4 KB, then the next starts.
  await Promise.all(range(0, 12).map((k) => buffer.append([chunk('a', k * 20, 20)])));
  const stats = buffer.stats();
  expect(stats.events).toBe(240);
  const sizes: number[] = [];
  for (let c = buffer.take(); c; c = buffer.take()) {
    sizes.push(c.bytes);
    await buffer.ack(c);
  }
  expect(sizes.length).toBeGreaterThanOrEqual(2);
  const batch = chunk('a', 0, 20).entries.length;
  for (const s of sizes) expect(s).toBeLessThan(4 * 1024 + batch);
});

test('batches queued in one turn count against max_bytes together: a batch that does not fit beside them waits for space', async () => {
  const one = chunk('a', 0, 20).entries.length;
  const buffer = await open({ maxBytes: Math.floor(one * 2.5), chunkLimitBytes: one });
  let third = false;
  const appends = [0, 1, 2].map((k) =>
    buffer.append([chunk('a', k * 20, 20)]).then(() => {
      if (k === 2) third = true;
    }),
  );
  await Promise.all(appends.slice(0, 2));
  await new Promise((r) => setTimeout(r, 20));
  expect(third).toBe(false); // two batches fill the buffer (with their records' headers)
  expect(buffer.stats().events).toBe(40);
  const c = buffer.take();
  if (!c) throw new Error('no sealed chunk');
  await buffer.ack(c);
  await appends[2];
  expect(third).toBe(true);
});

/** Holds the first fdatasync until `release` is called, then lets it settle with `err` (or succeed); later calls run. */
function holdFirstFdatasync(): { started: Promise<void>; release(err?: NodeJS.ErrnoException): void } {
  const real = fs.fdatasync.bind(fs);
  let calls = 0;
  let onStart = () => {};
  const started = new Promise<void>((r) => {
    onStart = r;
  });
  let release: (err?: NodeJS.ErrnoException) => void = () => {};
  const held = new Promise<NodeJS.ErrnoException | undefined>((r) => {
    release = r;
  });
  jest.spyOn(fs, 'fdatasync').mockImplementation(async (fd) => {
    if (++calls > 1) return real(fd);
    onStart();
    const err = await held;
    await real(fd);
    if (err) throw err;
  });
  return { started, release: (err) => release(err) };
}

test('under fsync: always a later group on the same chunk is not acked while an earlier group’s fdatasync is still running, and is refused when it fails', async () => {
  const buffer = await open({ fsync: 'always' });
  const sync = holdFirstFdatasync();
  const first = buffer.append([chunk('a', 0, 10)]);
  const firstOutcome = first.then(
    () => 'stored',
    (err: Error & { code?: string }) => err,
  );
  await sync.started;
  // A second group writes the same chunk file; its own fdatasync succeeds at once.
  let secondSettled = false;
  const second = buffer.append([chunk('a', 10, 10)]).finally(() => {
    secondSettled = true;
  });
  const secondOutcome = second.then(
    () => 'stored',
    (err: Error & { code?: string }) => err.code,
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  expect(secondSettled).toBe(false); // not acked ahead of the first group
  sync.release(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
  const firstErr = await firstOutcome;
  jest.restoreAllMocks();
  expect(firstErr).toMatchObject({ name: 'RetryableError', code: 'TRB_BUF_IO' });
  expect(await secondOutcome).toBe('TRB_BUF_BROKEN');
  expect(buffer.problem()).toMatch(/fdatasync failed/);
});

test('a batch waiting for space behind a queued group whose write fails is woken and stored', async () => {
  const one = chunk('a', 0, 20).entries.length;
  const buffer = await open({ maxBytes: Math.floor(one * 1.5) });
  fs.inject({ ops: ['writev'], path: '.chunk', code: 'EIO', times: 1 });
  // One turn: the first batch is queued for the group commit; the second does not fit beside it and waits.
  const first = buffer.append([chunk('a', 0, 20, 'w1')]);
  let second: 'waiting' | 'stored' | 'refused' = 'waiting';
  const secondDone = buffer.append([chunk('a', 20, 20, 'w2')]).then(
    () => {
      second = 'stored';
    },
    () => {
      second = 'refused';
    },
  );
  await expect(first).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  // The failed group's bytes left the buffer: the waiting batch fits now (bounded wait, so a hang fails here).
  await Promise.race([secondDone, new Promise((r) => setTimeout(r, 2000))]);
  expect(second).toBe('stored');
  // The resend of the refused batch is stored too, once the second is delivered.
  buffer.sealDue(Date.now(), true);
  const c = buffer.take();
  if (!c) throw new Error('no sealed chunk');
  await buffer.ack(c);
  await buffer.append([chunk('a', 0, 20, 'w1')]);
  expect(await drainEvents(buffer)).toEqual(range(0, 20));
});

test('under fsync: always close waits for the group whose fdatasync is running: it is acked, its ids are recorded, and its resend is not stored again', async () => {
  const buffer = await open({ fsync: 'always' });
  const sync = holdFirstFdatasync();
  const stored = buffer.append([chunk('a', 0, 10, 'c1')]);
  const outcome = stored.then(
    () => 'stored',
    (err: Error & { code?: string }) => err.code,
  );
  await sync.started;
  const closing = buffer.close();
  // Before the group is synced, close must not close the id journal under it.
  await Promise.race([closing, new Promise((r) => setTimeout(r, 100))]);
  sync.release();
  await closing;
  jest.restoreAllMocks();
  expect(await outcome).toBe('stored');
  expect(ioErrors).toEqual([]);
  const again = await open({ fsync: 'always' });
  await again.append([chunk('a', 0, 10, 'c1')]); // the resend of an acked batch: not stored again
  expect(await drainEvents(again)).toEqual(range(0, 10));
});

test('under fsync: always a group whose write failed at once does not let a later group be acked ahead of an earlier group’s running fdatasync', async () => {
  const buffer = await open({ fsync: 'always' });
  const sync = holdFirstFdatasync();
  const firstOutcome = buffer.append([chunk('a', 0, 10)]).then(
    () => 'stored',
    (err: Error & { code?: string }) => err.code,
  );
  await sync.started;
  // A second group's write fails: it is refused at once.
  fs.inject({ ops: ['writev'], code: 'EIO', times: 1 });
  await expect(buffer.append([chunk('a', 10, 10)])).rejects.toMatchObject({ code: 'TRB_BUF_IO' });
  // A third group writes the same chunk file; its own fdatasync succeeds at once.
  let thirdSettled = false;
  const thirdOutcome = buffer
    .append([chunk('a', 20, 10)])
    .finally(() => {
      thirdSettled = true;
    })
    .then(
      () => 'stored',
      (err: Error & { code?: string }) => err.code,
    );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  expect(thirdSettled).toBe(false); // not acked ahead of the first group, although the group between them settled
  sync.release(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
  expect(await firstOutcome).toBe('TRB_BUF_IO');
  jest.restoreAllMocks();
  expect(await thirdOutcome).toBe('TRB_BUF_BROKEN');
});
