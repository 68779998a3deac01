/**
 * Merged runs of fluent-logger's acked messages (`ForwardChunk.ids`): one
 * chunk for N ids, each id checked and remembered as if its message came
 * alone, so a resend (alone, merged again, or mixed with new ids) is never
 * stored twice, also after a restart.
 */
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Filesystem, realFilesystem } from '@tributary/core';
import { AckedIds, EventTime, type ForwardChunk, decodeEntries, encodeAck, encodeEntry } from '@tributary/forward-protocol';
import { JOURNAL_FILE, hashKey } from './acked-chunk-ids';
import { resendKey, runKeyHashes } from './base-buffer';
import { DiskBuffer, type DiskBufferOptions } from './disk-buffer';

const t = new EventTime(1700000000, 0);
const entry = (i: number) => encodeEntry(t, { i, pad: 'x'.repeat(i % 7) });
const idOf = (i: number) => `fl-${i}`;

/** The run the coalescer makes of the acked messages `is` (one tag): entries back to back, ids, sizes, acks. */
function run(is: number[], tag = 'app'): ForwardChunk {
  const entries = is.map(entry);
  return {
    tag,
    entries: Buffer.concat(entries),
    count: is.length,
    mode: 'message',
    ids: new AckedIds(
      entries.map((e) => e.length),
      Buffer.concat(is.map((i) => encodeAck(Buffer.concat([Buffer.from([0xa0 | idOf(i).length]), Buffer.from(idOf(i))])))),
    ),
  };
}

/** One acked message as a chunk of its own (a run of one, or parseRequest's chunk). */
const single = (i: number, tag = 'app'): ForwardChunk => ({ tag, entries: entry(i), count: 1, mode: 'message', chunkId: idOf(i) });

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

let dir: string;
const opened: DiskBuffer[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-runs-'));
});
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
});

const options = (o: Partial<DiskBufferOptions> = {}): DiskBufferOptions => ({
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

async function open(o: Partial<DiskBufferOptions> = {}): Promise<DiskBuffer> {
  const { buffer } = await DiskBuffer.open(options(o));
  opened.push(buffer);
  return buffer;
}

/** What the forward input does with a read's chunks: leave out the acked, append the rest. */
async function accept(buffer: DiskBuffer, chunks: ForwardChunk[]): Promise<ForwardChunk[]> {
  const fresh = await buffer.skipAcked(chunks);
  if (fresh.length) await buffer.append(fresh);
  return fresh;
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

test('a run of N acked messages is buffered as one chunk of N events, and every one of its ids is remembered', async () => {
  const buffer = await open();
  const r = run(range(0, 100));
  const fresh = await accept(buffer, [r]);
  expect(fresh).toEqual([r]); // passed through whole: not split per message
  expect(buffer.stats()).toMatchObject({ chunks: 1, events: 100 });
  // Each id is known on its own: a resend of any of them alone, or merged again, is left out.
  expect(await buffer.skipAcked(range(0, 100).map((i) => single(i)))).toEqual([]);
  expect(await buffer.skipAcked([run(range(0, 100)), run([5, 50, 99])])).toEqual([]);
  expect(await drainEvents(buffer)).toEqual(range(0, 100));
});

test('a resend of some ids of a run, mixed with new ones, stores only the new ones, in order, also after a restart', async () => {
  const first = await open();
  await accept(first, [run(range(0, 50))]);
  // The app resends 40..49 (acks lost) with 50..59 behind them, in one read: one merged run.
  const fresh = await accept(first, [run(range(40, 60))]);
  expect(fresh.map((c) => c.chunkId)).toEqual(range(50, 60).map(idOf));
  expect(fresh.every((c) => c.count === 1)).toBe(true);
  expect(first.stats().events).toBe(60);
  await first.close();

  const second = await open();
  // After the restart: resends alone, merged, and mixed with new ids (interleaved) are each stored once.
  expect(
    await accept(
      second,
      range(0, 60).map((i) => single(i)),
    ),
  ).toEqual([]);
  expect(await accept(second, [run(range(0, 60))])).toEqual([]);
  const mixed = await accept(second, [run([10, 60, 20, 61, 59, 62]), single(63), run([63, 64], 'other')]);
  expect(mixed.map((c) => `${c.tag}:${c.chunkId ?? c.ids?.chunkIds.join(',')}`)).toEqual([
    'app:fl-60',
    'app:fl-61',
    'app:fl-62',
    'app:fl-63',
    'other:fl-63,fl-64', // the same id on another tag is another chunk (another client)
  ]);
  expect((await drainEvents(second)).sort((a, b) => a - b)).toEqual([...range(0, 65), 63].sort((a, b) => a - b));
});

test('a run whose ids were stored meanwhile by a resend: left out when all were, refused (not stored) when some were', async () => {
  const buffer = await open();
  // Both let through by skipAcked (nothing acked yet); the resend is appended first.
  const slow = run(range(0, 10));
  const partly = run(range(5, 15));
  expect(await buffer.skipAcked([slow, partly])).toEqual([slow, partly]);
  await buffer.append([run(range(0, 10))]);
  await buffer.append([slow]); // every id stored: nothing more
  expect(buffer.stats().events).toBe(10);
  await expect(buffer.append([partly])).rejects.toMatchObject({ code: 'TRB_BUF_RESENT' });
  expect(buffer.stats().events).toBe(10);
  // The sender resends the refused batch: now split, its new ids stored once.
  expect((await accept(buffer, [run(range(5, 15))])).map((c) => c.chunkId)).toEqual(range(10, 15).map(idOf));
  expect(await drainEvents(buffer)).toEqual(range(0, 15));
});

test('a run checked at skipAcked whose ids an append started since carries waits for it at append, then is refused (not stored twice)', async () => {
  const buffer = await open();
  const slow = run(range(0, 10));
  expect(await buffer.skipAcked([slow])).toEqual([slow]);
  // A resend of 5..7 comes in after the check and is being appended (not committed yet) when the run's append comes.
  const racing = buffer.append(await buffer.skipAcked([run(range(5, 8))]));
  const late = buffer.append([slow]);
  await racing;
  await expect(late).rejects.toMatchObject({ code: 'TRB_BUF_RESENT' });
  expect(buffer.stats().events).toBe(3);
  // The sender resends the refused batch: split, its other ids stored once.
  expect((await accept(buffer, [run(range(0, 10))])).map((c) => c.chunkId)).toEqual([0, 1, 2, 3, 4, 8, 9].map(idOf));
  expect((await drainEvents(buffer)).sort((a, b) => a - b)).toEqual(range(0, 10));
});

test('a resend in the same read as its first send (one run holding an id twice) is stored once; the same id with other events is another chunk', async () => {
  const buffer = await open();
  // The client timed out while the forwarder was not reading and resent 0 and 1 on the same connection: [0, 1, 2, 0, 1].
  const fresh = await accept(buffer, [run([0, 1, 2, 0, 1])]);
  expect(fresh.map((c) => c.chunkId)).toEqual([0, 1, 2].map(idOf));
  expect(buffer.stats().events).toBe(3);
  // An id used twice for other events (another size: another key) is not a resend: both are stored.
  const other = run([3, 4]);
  const sameIdOtherEvents: ForwardChunk = {
    ...other,
    ids: new AckedIds(
      other.ids?.sizes ?? [],
      Buffer.concat([3, 3].map((i) => encodeAck(Buffer.concat([Buffer.from([0xa0 | idOf(i).length]), Buffer.from(idOf(i))])))),
    ),
  };
  expect(await accept(buffer, [sameIdOtherEvents])).toEqual([sameIdOtherEvents]);
  expect((await drainEvents(buffer)).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  expect(await buffer.skipAcked([single(0), single(1), single(2)])).toEqual([]);
});

test('concurrent appends of the same run store it once', async () => {
  const buffer = await open({ fsync: 'always' });
  const a = run(range(0, 30));
  const b = run(range(0, 30));
  await Promise.all([accept(buffer, [a]), accept(buffer, [b])]);
  expect(await drainEvents(buffer)).toEqual(range(0, 30));
});

test('a run whose events the filters all dropped (empty entries, its ids kept) stores nothing but remembers every id, also after a restart', async () => {
  const first = await open();
  const emptied: ForwardChunk = { ...run(range(0, 20)), entries: Buffer.alloc(0), count: 0 };
  expect(await first.skipAcked([run(range(0, 20))])).toHaveLength(1);
  await first.append([emptied]);
  expect(first.stats().events).toBe(0);
  expect(await first.skipAcked([run(range(0, 20))])).toEqual([]);
  await first.close();
  const second = await open();
  expect(await second.skipAcked(range(0, 20).map((i) => single(i)))).toEqual([]);
  expect(await drainEvents(second)).toEqual([]);
});

test("a run's keys match its messages sent alone whatever their sizes (1 to 5 digits)", async () => {
  const buffer = await open();
  const big = (i: number) => encodeEntry(t, { i, pad: 'y'.repeat(i === 2 ? 12_000 : i === 1 ? 900 : 0) });
  const entries = [0, 1, 2].map(big);
  const merged: ForwardChunk = {
    tag: 'app',
    entries: Buffer.concat(entries),
    count: 3,
    mode: 'message',
    ids: new AckedIds(
      entries.map((e) => e.length),
      (run([0, 1, 2]).ids as AckedIds).acks,
    ),
  };
  expect(entries.map((e) => String(e.length).length)).toEqual([2, 3, 5]);
  await accept(buffer, [merged]);
  const alone = [0, 1, 2].map((i): ForwardChunk => ({ tag: 'app', entries: entries[i], count: 1, mode: 'message', chunkId: idOf(i) }));
  expect(await buffer.skipAcked(alone)).toEqual([]);
  // A message of another size under the same id is another chunk.
  expect(await buffer.skipAcked([{ ...alone[1], entries: entries[0] }])).toHaveLength(1);
});

test("a merged run hashes each event's key as that message's key alone: ids of every length, parity and kind, tags of any code units, sizes of any digit count", () => {
  // an id as msgpack puts it in an ack: str8 or str16 by its UTF-8 length, or bin8
  const str = (s: string) => {
    const bytes = Buffer.from(s);
    const head = bytes.length < 256 ? [0xd9, bytes.length] : [0xda, bytes.length >> 8, bytes.length & 0xff];
    return Buffer.concat([Buffer.from(head), bytes]);
  };
  const bin = (bytes: number[]) => Buffer.from([0xc4, bytes.length, ...bytes]);
  const strIds = [
    ...Array.from({ length: 41 }, (_, n) => 'k'.repeat(n)),
    'fl-9',
    'fl-10',
    'ïd-ü',
    'é',
    '\u{1F600}x',
    'z'.repeat(5000),
    'a',
  ];
  const values = [...strIds.map(str), bin([0xff, 0x00, 0x81]), bin([0x41, 0x42, 0x43, 0x44])];
  const sizes = values.map((_, i) => [0, 7, 10, 99, 1234, 98765, 2147483647][i % 7]);
  const ids = new AckedIds(sizes, Buffer.concat(values.map(encodeAck)));
  for (const tag of ['', 'a', 'ab', 'app', 'bench.message', 'tàg.\u{1F600}']) {
    const out = new Uint32Array(4 * sizes.length);
    runKeyHashes(tag, ids, out);
    const want = new Uint32Array(4);
    ids.chunkIds.forEach((chunkId, i) => {
      hashKey(resendKey({ tag, chunkId, count: 1, mode: 'message', entries: { length: sizes[i] } as Buffer }), want);
      expect([tag, chunkId, [...out.subarray(4 * i, 4 * i + 4)]]).toEqual([tag, chunkId, [...want]]);
    });
  }
});

test('ids that are not ASCII text (UTF-8 str, bin) are known by their text: a resend alone matches the merged run', async () => {
  const buffer = await open();
  const entries = [0, 1].map(entry);
  const strId = 'ïd-ü';
  const binId = Buffer.from([0xff, 0x00, 0x81, 0x7f]);
  const strValue = Buffer.concat([Buffer.from([0xa0 | Buffer.byteLength(strId)]), Buffer.from(strId)]);
  const binValue = Buffer.concat([Buffer.from([0xc4, binId.length]), binId]);
  const ids = new AckedIds(
    entries.map((e) => e.length),
    Buffer.concat([encodeAck(strValue), encodeAck(binValue)]),
  );
  expect(ids.chunkIds).toEqual([strId, binId.toString('base64')]);
  await accept(buffer, [{ tag: 'app', entries: Buffer.concat(entries), count: 2, mode: 'message', ids }]);
  const alone = ids.chunkIds.map((chunkId, i): ForwardChunk => ({ tag: 'app', entries: entries[i], count: 1, mode: 'message', chunkId }));
  expect(await buffer.skipAcked(alone)).toEqual([]);
  expect(await drainEvents(buffer)).toEqual([0, 1]);
});

describe.each(['interval', 'always'] as const)('fsync: %s', (fsync) => {
  test('a crash between the events write and the id journal write loses no id: the ids written beside the events are remembered, and the resend is stored once', async () => {
    // The process "dies" after its chunk writes: the journal writes that would follow are never made.
    const crash = { armed: false, dropped: 0 };
    const fs: Filesystem = {
      ...realFilesystem,
      writevSync: (fd, buffers, position) => {
        if (crash.armed && readlinkSync(`/proc/self/fd/${fd}`).endsWith(JOURNAL_FILE)) {
          crash.dropped++;
          return buffers.reduce((n, b) => n + b.length, 0);
        }
        return realFilesystem.writevSync(fd, buffers, position);
      },
    };
    const first = await open({ fsync, fs });
    crash.armed = true;
    const sent = () => [run(range(0, 50)), run(range(50, 60), 'other'), single(60), { ...single(61), entries: Buffer.alloc(0), count: 0 }];
    expect(await accept(first, sent())).toHaveLength(4);
    expect(crash.dropped).toBe(1); // the group's one journal write
    await first.close(); // what the kill left: the chunk files as written, the journal without the group's ids
    crash.armed = false;

    const { buffer: second, idsRemembered } = await DiskBuffer.open({ ...options(), fsync });
    opened.push(second);
    // 61 ids were written beside their events; 61 (its events all filtered out) had none to sit beside.
    expect(idsRemembered).toBe(61);
    expect(second.stats().events).toBe(61);
    // (what skipAcked let through, without the key hash it noted on it)
    const fresh = (await accept(second, sent())).map(({ resendHash, ...c }) => c);
    expect(fresh).toEqual([single(61)].map((c) => ({ ...c, entries: Buffer.alloc(0), count: 0 })));
    expect((await drainEvents(second)).sort((a, b) => a - b)).toEqual(range(0, 61));
    // and a restart after that still knows every id, now from the journal
    await second.close();
    const third = await open({ fsync });
    expect(await third.skipAcked(sent().slice(0, 3))).toEqual([]);
  });
});

test('after a clean stop with more buffered ids than the window keeps, the newest acks (chunks already delivered) are still known, and nothing counts as recovered from the chunk files', async () => {
  const first = await open({ ackedIds: { maxEntries: 100, ttlMs: 60_000 } });
  for (let i = 0; i < 300; i += 50) await accept(first, [run(range(i, i + 50), 'buffered')]); // stays in the buffer
  await accept(first, [run(range(1000, 1050), 'delivered')]);
  first.sealDue(Date.now(), true);
  const taken = [];
  for (let c = first.take(); c; c = first.take()) taken.push(c);
  for (const c of taken) {
    if (c.tag === 'delivered') await first.ack(c);
    else first.release(c, 0);
  }
  expect(taken.filter((c) => c.tag === 'delivered')).toHaveLength(1);
  await first.close();

  const { buffer: second, idsRemembered } = await DiskBuffer.open(options({ ackedIds: { maxEntries: 100, ttlMs: 60_000 } }));
  opened.push(second);
  expect(idsRemembered).toBe(0); // every id in the chunk files was journaled (the older ones were pushed out by count, as before)
  expect(second.stats().events).toBe(300);
  expect(await second.skipAcked([single(1049, 'delivered'), single(1000, 'delivered')])).toEqual([]);
  expect(await second.skipAcked([single(299, 'buffered')])).toEqual([]); // among the newest 100
});
