/**
 * A chunk larger than the buffer's chunk limit is stored in pieces
 * (@tributary/inputs' pieces.ts), each but the last under a piece id; the
 * buffer (@tributary/buffer) remembers each stored piece. These cases put the
 * two together, without sockets: the forwarder's tests send the same shapes
 * over the wire.
 */
import { MemoryBuffer } from '@tributary/buffer';
import { EventTime, type ForwardChunk, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { consumeInPieces } from '@tributary/inputs';

const LIMIT = 1024;
const event = (i: number) => encodeEntry(new EventTime(1700000000, i), { i, pad: 'x'.repeat(280) });
/** `n` events numbered from `from`, under the client chunk id `c1` (two clients may well use one id for different chunks). */
const chunk = (n: number, tag = 'app', from = 0): ForwardChunk => ({
  tag,
  entries: Buffer.concat(Array.from({ length: n }, (_, i) => event(from + i))),
  count: n,
  mode: 'packed',
  chunkId: 'c1',
});

function openBuffer(): MemoryBuffer {
  return new MemoryBuffer(
    { maxBytes: 1 << 22, chunkLimitBytes: LIMIT, flushIntervalMs: 60_000, overflow: 'block' },
    { maxEntries: 1000, ttlMs: 600_000 },
  );
}

/** Every event the buffer holds, by its `i`, in order. */
async function stored(buffer: MemoryBuffer): Promise<number[]> {
  buffer.sealDue(Date.now(), true);
  const out: number[] = [];
  for (let c = buffer.take(); c; c = buffer.take()) {
    out.push(...decodeEntries(Buffer.concat(await buffer.read(c))).map((e) => e.record.i as number));
    await buffer.ack(c);
  }
  return out.sort((a, b) => a - b);
}

/**
 * One send of `c` as the forward input makes it: skipAcked, then the pieces
 * one after the other, `onPiece` before each is appended (a throw refuses it).
 */
async function send(buffer: MemoryBuffer, c: ForwardChunk, onPiece: (n: number) => Promise<void> | void = () => {}): Promise<void> {
  const fresh = await buffer.skipAcked([c]);
  let pieces = 0;
  if (fresh.length)
    await consumeInPieces(
      async (handOff) => {
        await onPiece(++pieces);
        await buffer.append(handOff);
      },
      fresh,
      LIMIT,
    );
}

test('a resend that comes while the first send is still storing its pieces stores nothing twice, its last piece neither', async () => {
  const buffer = openBuffer();
  let resend: Promise<void> | undefined;
  // The client resends once the first piece of its first send is stored (its ack timed out), so the two sends'
  // pieces interleave: the resend's last piece comes after the first send's last piece has settled.
  await send(buffer, chunk(9), (n) => {
    if (n === 2) resend = send(buffer, chunk(9));
  });
  await resend;
  expect(await stored(buffer)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
});

test('a chunk stored in pieces is skipped whole when resent after its send settled', async () => {
  const buffer = openBuffer();
  await send(buffer, chunk(9));
  expect(await buffer.skipAcked([chunk(9)])).toEqual([]);
  expect(await stored(buffer)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
});

describe('two chunks under one id are never taken for each other', () => {
  test('with the same tag: the pieces of one refused half-way, then the other', async () => {
    const buffer = openBuffer();
    await expect(
      send(buffer, chunk(9), (n) => {
        if (n === 2) throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    await send(buffer, chunk(5, 'app', 100));
    expect(await stored(buffer)).toEqual([0, 1, 2, 100, 101, 102, 103, 104]);
  });

  test('sent at once', async () => {
    const buffer = openBuffer();
    await Promise.all([send(buffer, chunk(2, 'app.a')), send(buffer, chunk(2, 'app.b', 100))]);
    expect(await stored(buffer)).toEqual([0, 1, 100, 101]);
  });

  test('one arriving between the pieces of the other', async () => {
    const buffer = openBuffer();
    let other: Promise<void> | undefined;
    await send(buffer, chunk(9, 'app.a'), (n) => {
      if (n === 2) other = send(buffer, chunk(2, 'app.b', 100));
    });
    await other;
    expect(await stored(buffer)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 101]);
  });

  test('one coming long after the other was refused half-way, resent and stored', async () => {
    const buffer = openBuffer();
    await expect(
      send(buffer, chunk(9, 'app.a'), (n) => {
        if (n === 2) throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    await send(buffer, chunk(9, 'app.a'));
    await send(buffer, chunk(5, 'app.b', 100));
    expect(await stored(buffer)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 101, 102, 103, 104]);
  });
});

test('an input piece the filters made other events of this time (a throttle), cut again after them: none of its events is taken for stored', async () => {
  const buffer = openBuffer();
  // What the filters kept of one input piece (not the chunk's last: no resendHash), cut again at the limit.
  const filtered = (keep: number[]): ForwardChunk => ({
    tag: 'app',
    entries: Buffer.concat(keep.map(event)),
    count: keep.length,
    mode: 'packed',
    chunkId: 'c1\u00000:5eed',
  });
  let appends = 0;
  await expect(
    consumeInPieces(
      async (c) => {
        if (++appends === 2) throw new Error('refused');
        await buffer.append(c);
      },
      [filtered([0, 1, 2, 6, 7, 8])],
      LIMIT,
      'filtered',
    ),
  ).rejects.toThrow('refused');
  // The resend: the throttle kept 3-8 this time. Its first piece has the size and count of the stored one, not its events.
  await consumeInPieces((c) => buffer.append(c).then(() => {}), [filtered([3, 4, 5, 6, 7, 8])], LIMIT, 'filtered');
  expect(await stored(buffer)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
});
