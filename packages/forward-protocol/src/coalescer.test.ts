/**
 * The Message-run coalescer on byte fixtures: what a read's frames become
 * (chunks, tags, counts, entry bytes, acks), where runs are cut, and what a
 * refusal in the middle of a run leaves standing. No sockets.
 */
import { pack } from 'msgpackr';
import { encodeAck } from './ack';
import { DEFAULT_ADMISSION } from './admission';
import { MessageCoalescer } from './coalescer';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward } from './encoder';
import { decodeEntries } from './entries';
import { ProtocolErrorCode } from './errors';
import { EventTime } from './event-time';
import { DEFAULT_MAX_DECOMPRESSED_BYTES, type ForwardChunk, parseRequest } from './request';

const t = new EventTime(1700000001, 123456789);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function coalescer(admission = DEFAULT_ADMISSION): MessageCoalescer {
  return new MessageCoalescer(admission, DEFAULT_MAX_DECOMPRESSED_BYTES);
}

/** Frames `reads` one push each through a decoder and coalesces each push: one batch of chunks per read. */
function coalesceReads(reads: Buffer[], c = coalescer()): { batches: ForwardChunk[][]; error: Error | null; bufs: Buffer[] } {
  const decoder = new FrameDecoder();
  const batches: ForwardChunk[][] = [];
  const bufs: Buffer[] = [];
  for (const read of reads) {
    const { buf, ranges } = decoder.pushRanges(read);
    const out: ForwardChunk[] = [];
    const error = c.coalesce(buf, ranges, 0, decoder, out);
    if (out.length) {
      batches.push(out);
      bufs.push(buf);
    }
    if (error) return { batches, error, bufs };
  }
  return { batches, error: null, bufs };
}

function coalesceOne(frames: Buffer[], c = coalescer()): { chunks: ForwardChunk[]; error: Error | null; buf: Buffer } {
  const { batches, error, bufs } = coalesceReads([Buffer.concat(frames)], c);
  expect(batches.length).toBeLessThanOrEqual(1);
  return { chunks: batches[0] ?? [], error, buf: bufs[0] };
}

const summary = (chunks: ForwardChunk[]) => chunks.map((c) => `${c.tag}:${c.mode}:${c.count}${c.chunkId ? `:${c.chunkId}` : ''}`);

/** A Message-mode frame with a raw time value (bytes as given), for times the encoder will not write. */
function rawTimeMessage(tag: string, time: number[], record: Record<string, unknown>): Buffer {
  return Buffer.concat([Buffer.from([0x93]), pack(tag), Buffer.from(time), pack(record)]);
}

function codeOf(err: Error | null): string | undefined {
  return (err as { code?: string } | null)?.code;
}

test('a run of one tag within a read becomes one chunk: count and entry bytes are those of the messages, in order, in place', () => {
  const records = Array.from({ length: 25 }, (_, i) => ({ i, msg: 'é'.repeat(i % 4) }));
  const { chunks, error, buf } = coalesceOne(records.map((r) => encodeMessage('app.a', t, r)));
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual(['app.a:message:25']);
  expect(chunks[0].entries.equals(Buffer.concat(records.map((r) => encodeEntry(t, r))))).toBe(true);
  expect(chunks[0].entries.buffer).toBe(buf.buffer); // a view of the read, not a copy
  expect(chunks[0].ack).toBeUndefined();
});

test('a tag change cuts the run; a tag coming back starts a new one', () => {
  const frames = [
    ...[0, 1, 2].map((i) => encodeMessage('app.a', t, { i })),
    ...[3, 4].map((i) => encodeMessage('app.b', 1700000002, { i })),
    encodeMessage('app.a', t, { i: 5 }),
  ];
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual(['app.a:message:3', 'app.b:message:2', 'app.a:message:1']);
  const records = chunks.flatMap((c) => decodeEntries(c.entries).map((e) => e.record.i));
  expect(records).toEqual([0, 1, 2, 3, 4, 5]);
  expect(decodeEntries(chunks[1].entries)[0].time).toEqual(new EventTime(1700000002, 0));
});

test('a message asking for an ack is never merged: it keeps its own chunk and ack, and cuts the run around it', () => {
  const frames = [
    encodeMessage('app.a', t, { i: 0 }),
    encodeMessage('app.a', t, { i: 1 }),
    encodeMessage('app.a', t, { i: 2 }, { chunk: 'c-1' }),
    encodeMessage('app.a', t, { i: 3 }),
    encodeMessage('app.a', t, { i: 4 }, { chunk: 'c-2' }),
    encodeMessage('app.a', t, { i: 5 }, { chunk: 'c-3' }),
  ];
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual([
    'app.a:message:2',
    'app.a:message:1:c-1',
    'app.a:message:1',
    'app.a:message:1:c-2',
    'app.a:message:1:c-3',
  ]);
  expect(chunks[1].ack?.equals(pack('c-1'))).toBe(true); // echoed byte for byte
  expect(chunks.filter((c) => c.ack).length).toBe(3);
  expect(chunks.flatMap((c) => decodeEntries(c.entries).map((e) => e.record.i))).toEqual([0, 1, 2, 3, 4, 5]);
});

test('other requests (time 0, PackedForward) keep their own chunks and cut the run', () => {
  const packed = Buffer.concat([encodeEntry(t, { p: 0 }), encodeEntry(t, { p: 1 })]);
  const frames = [
    encodeMessage('app.a', t, { i: 0 }),
    encodeMessage('app.a', 0, { i: 1 }), // "now": stamped, its own chunk
    encodeMessage('app.a', t, { i: 2 }),
    encodePackedForward('app.a', packed),
    encodeMessage('app.a', t, { i: 3 }),
    encodeMessage('app.a', t, { i: 4 }),
  ];
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual(['app.a:message:1', 'app.a:message:1', 'app.a:message:1', 'app.a:packed:2', 'app.a:message:2']);
  expect(chunks[3].entries.equals(packed)).toBe(true);
  expect(decodeEntries(chunks[1].entries)[0].time.seconds).toBeGreaterThan(1700000000);
});

test('a repeated tag takes the fast path only for the very same bytes: each event is what parseRequest makes of its frame, in order', () => {
  const bigMap = Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`k${k}`, k])); // map16: the general path
  const frames = [
    encodeMessage('app.é', t, { i: 0 }), // 6 bytes, 5 UTF-16 units
    encodeMessage('app.é', t, { i: 1 }),
    encodeMessage('app.e', t, { i: 2 }), // the same length in UTF-16, not in bytes
    encodeMessage('app.f', t, { i: 3 }), // the same byte length, other bytes
    encodeMessage('app.f', 1700000005, { i: 4 }), // an int time
    encodeMessage('app.f', t, { i: 5, ...bigMap }),
    encodeMessage('app.fg', t, { i: 6 }), // the last tag is its prefix
    rawTimeMessage('app.fg', [0xc7, 0x08, 0x00, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 7], { i: 7 }), // ext8 EventTime
    encodeForward('app.fg', [encodeEntry(t, { i: 8 })]),
    encodeMessage('app.fg', t, { i: 9 }),
    encodePackedForward('app.fg', encodeEntry(t, { i: 10 })),
    encodeMessage('app.fg', t, { i: 11 }),
  ];
  const expected = frames.map((f) => parseRequest(Buffer.from(f)));
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual([
    'app.é:message:2',
    'app.e:message:1',
    'app.f:message:3',
    'app.fg:message:2',
    'app.fg:forward:1',
    'app.fg:message:1',
    'app.fg:packed:1',
    'app.fg:message:1',
  ]);
  expect(Buffer.concat(chunks.map((c) => c.entries)).equals(Buffer.concat(expected.map((c) => c.entries)))).toBe(true);
  expect(chunks.flatMap((c) => decodeEntries(c.entries).map((e) => e.record.i))).toEqual(range(0, 12));
});

test('a refused tag is refused again when it repeats; an event of a repeated tag that breaks the time or size rule is refused', () => {
  const bad = encodeMessage('app.\u0001', t, { i: 0 });
  const c = coalescer();
  expect(codeOf(coalesceOne([bad], c).error)).toBe(ProtocolErrorCode.BadTag);
  expect(codeOf(coalesceOne([Buffer.from(bad)], c).error)).toBe(ProtocolErrorCode.BadTag);
  // a time the fast path reads but the rule refuses, after the tag was admitted: nanoseconds 1e9, then an over-size event
  const nanos = rawTimeMessage('app.a', [0xd7, 0x00, 0, 0, 0, 1, 0x3b, 0x9a, 0xca, 0x00], { i: 1 });
  expect(codeOf(coalesceOne([encodeMessage('app.a', t, { i: 0 }), nanos], c).error)).toBe(ProtocolErrorCode.BadTime);
  const capped = coalescer({ ...DEFAULT_ADMISSION, maxEventBytes: 20 });
  const over = coalesceOne([encodeMessage('app.a', t, {}), encodeMessage('app.a', t, { pad: 'x'.repeat(20) })], capped);
  expect(codeOf(over.error)).toBe(ProtocolErrorCode.EventTooLarge);
  expect(summary(over.chunks)).toEqual(['app.a:message:1']);
});

test('frames split across reads: every split gives the same events in order, and no run spans two reads', () => {
  const frames = [
    ...[0, 1, 2, 3].map((i) => encodeMessage('app.a', t, { i })),
    encodeMessage('app.a', t, { i: 4 }, { chunk: 'c-4' }),
    ...[5, 6, 7].map((i) => encodeMessage('app.b', t, { i })),
  ];
  const wire = Buffer.concat(frames);
  const expected = [0, 1, 2, 3, 4, 5, 6, 7];
  for (let cut = 1; cut < wire.length; cut++) {
    const { batches, error } = coalesceReads([Buffer.from(wire.subarray(0, cut)), Buffer.from(wire.subarray(cut))]);
    expect(error).toBeNull();
    const got = batches.flatMap((b) => b.flatMap((c) => decodeEntries(c.entries).map((e) => ({ tag: c.tag, i: e.record.i }))));
    expect(got).toEqual(expected.map((i) => ({ tag: i < 5 ? 'app.a' : 'app.b', i })));
    expect(batches.flat().reduce((n, c) => n + c.count, 0)).toBe(8);
    // The first read's events stay in its own batch: the run there ends with the read.
    const firstRead = batches.length === 2 ? batches[0].reduce((n, c) => n + c.count, 0) : 0;
    expect(firstRead).toBe(frames.filter((_, k) => frames.slice(0, k + 1).reduce((n, f) => n + f.length, 0) <= cut).length);
  }
  // Byte by byte: one complete message per read, so one chunk per read.
  const { batches } = coalesceReads(Array.from(wire, (b) => Buffer.from([b])));
  expect(batches.map((b) => b.length)).toEqual(expected.map(() => 1));
  expect(batches.map((b) => b[0].count)).toEqual(expected.map(() => 1));
});

test('a refused event in the middle of a run: the run before it stands, whole, with the error; nothing after it is taken', () => {
  const before = [0, 1, 2].map((i) => ({ i }));
  const cases: Array<[string, Buffer, string]> = [
    ['time -1', rawTimeMessage('app.a', [0xff], { i: 9 }), ProtocolErrorCode.BadTime],
    ['a control character in the tag', encodeMessage('app.\u0001', t, { i: 9 }), ProtocolErrorCode.BadTag],
    [
      'EventTime nanoseconds 1e9',
      rawTimeMessage('app.a', [0xd7, 0x00, 0, 0, 0, 1, 0x3b, 0x9a, 0xca, 0x00], { i: 9 }),
      ProtocolErrorCode.BadTime,
    ],
    ['a record that is not a map', rawTimeMessage('app.a', [0x01], [1, 2] as unknown as Record<string, unknown>), ProtocolErrorCode.Shape],
  ];
  for (const [, bad, code] of cases) {
    const frames = [...before.map((r) => encodeMessage('app.a', t, r)), bad, encodeMessage('app.a', t, { i: 4 })];
    const { chunks, error } = coalesceOne(frames);
    expect(codeOf(error)).toBe(code);
    expect(summary(chunks)).toEqual(['app.a:message:3']);
    expect(chunks[0].entries.equals(Buffer.concat(before.map((r) => encodeEntry(t, r))))).toBe(true);
  }
});

test('a record nested past the depth limit in a run is walked and refused; one at the limit is merged', () => {
  const nested = (depth: number) => {
    let v: Record<string, unknown> = {};
    for (let i = 1; i < depth; i++) v = { a: v };
    return v;
  };
  const admission = { ...DEFAULT_ADMISSION, maxRecordDepth: 4 };
  const ok = coalesceOne([encodeMessage('app.a', t, { i: 0 }), encodeMessage('app.a', t, nested(4))], coalescer(admission));
  expect(ok.error).toBeNull();
  expect(summary(ok.chunks)).toEqual(['app.a:message:2']);
  const deep = coalesceOne(
    [encodeMessage('app.a', t, { i: 0 }), encodeMessage('app.a', t, nested(5)), encodeMessage('app.a', t, { i: 2 })],
    coalescer(admission),
  );
  expect(codeOf(deep.error)).toBe(ProtocolErrorCode.TooDeep);
  expect(summary(deep.chunks)).toEqual(['app.a:message:1']);
});

test('limits: an event over max_event_bytes stops the run there; one exactly at it is merged; a run is bounded by its read', () => {
  const small = encodeEntry(t, { i: 0 });
  const big = { i: 1, pad: 'x'.repeat(200) };
  const limit = encodeEntry(t, big).length;
  const atLimit = coalesceOne(
    [encodeMessage('app.a', t, { i: 0 }), encodeMessage('app.a', t, big)],
    coalescer({ ...DEFAULT_ADMISSION, maxEventBytes: limit }),
  );
  expect(atLimit.error).toBeNull();
  expect(summary(atLimit.chunks)).toEqual(['app.a:message:2']);
  expect(atLimit.chunks[0].entries.length).toBe(small.length + limit);

  const over = coalesceOne(
    [encodeMessage('app.a', t, { i: 0 }), encodeMessage('app.a', t, big), encodeMessage('app.a', t, { i: 2 })],
    coalescer({ ...DEFAULT_ADMISSION, maxEventBytes: limit - 1 }),
  );
  expect(codeOf(over.error)).toBe(ProtocolErrorCode.EventTooLarge);
  expect(over.error?.message).toMatch(`over the limit of ${limit - 1}`);
  expect(summary(over.chunks)).toEqual(['app.a:message:1']);
  expect(over.chunks[0].entries.equals(small)).toBe(true);

  // No cap on a run's bytes of its own: a run holds at most the read it came from (the input splits chunks for the buffer).
  const frames = Array.from({ length: 200 }, (_, i) => encodeMessage('app.a', t, { i, pad: 'y'.repeat(100) }));
  const { chunks, buf } = coalesceOne(frames);
  expect(summary(chunks)).toEqual(['app.a:message:200']);
  expect(chunks[0].entries.length).toBeLessThan(buf.length);
  expect(chunks[0].entries.length).toBe(frames.reduce((n, f) => n + f.length, 0) - 200 * (1 + 'app.a'.length));
});

test("each connection keeps its own tag state: a tag one admitted is still checked against another connection's limits", () => {
  const tag = `app.${'t'.repeat(40)}`;
  const wide = coalescer({ ...DEFAULT_ADMISSION, maxTagBytes: 100 });
  const narrow = coalescer({ ...DEFAULT_ADMISSION, maxTagBytes: 16 });
  expect(coalesceOne([encodeMessage(tag, t, { i: 0 })], wide).error).toBeNull();
  expect(codeOf(coalesceOne([encodeMessage(tag, t, { i: 0 })], narrow).error)).toBe(ProtocolErrorCode.BadTag);
  // A refused tag is not remembered as admitted: sent again, it is refused again.
  expect(codeOf(coalesceOne([encodeMessage(tag, t, { i: 1 })], narrow).error)).toBe(ProtocolErrorCode.BadTag);
  // The admitted one repeats on its own connection, across reads, with the same string.
  const again = coalesceOne([encodeMessage(tag, t, { i: 2 }), encodeMessage(tag, t, { i: 3 })], wide);
  expect(summary(again.chunks)).toEqual([`${tag}:message:2`]);
});

test('frames before `from` (the handshake) are left alone', () => {
  const decoder = new FrameDecoder();
  const ping = pack(['PING', 'edge', 'salt', 'digest', '', '']);
  const { buf, ranges } = decoder.pushRanges(
    Buffer.concat([ping, encodeMessage('app.a', t, { i: 0 }), encodeMessage('app.a', t, { i: 1 })]),
  );
  const before = Buffer.from(buf.subarray(ranges[0], ranges[1]));
  const out: ForwardChunk[] = [];
  expect(coalescer().coalesce(buf, ranges, 2, decoder, out)).toBeNull();
  expect(summary(out)).toEqual(['app.a:message:2']);
  expect(buf.subarray(ranges[0], ranges[1]).equals(before)).toBe(true);
});

test("fluent-logger's acked messages, many in one read, each become their own chunk, in order, with their id and ack bytes", () => {
  const frames = [
    encodeMessage('app.a', t, { i: 0 }),
    ...Array.from({ length: 50 }, (_, i) => encodeMessage('app.a', t, { i: i + 1, deep: { a: [1] } }, { chunk: `id-${i}` })),
    encodeMessage('app.a', t, { i: 51 }),
    encodeMessage('app.b', t, { i: 52 }, { chunk: Buffer.from('binary-id') as unknown as string }),
  ];
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(summary(chunks)).toEqual([
    'app.a:message:1',
    ...Array.from({ length: 50 }, (_, i) => `app.a:message:1:id-${i}`),
    'app.a:message:1',
    `app.b:message:1:${Buffer.from('binary-id').toString('base64')}`,
  ]);
  // Each is what parseRequest makes of the same frame: entry bytes, id and the ack's raw bytes.
  frames.forEach((frame, i) => {
    const parsed = parseRequest(Buffer.from(frame));
    expect(chunks[i].entries.equals(parsed.entries)).toBe(true);
    expect(chunks[i].chunkId).toBe(parsed.chunkId);
    expect(chunks[i].ack?.equals(parsed.ack ?? Buffer.alloc(0)) ?? parsed.ack === undefined).toBe(true);
  });
  expect(decodeEntries(Buffer.concat(chunks.map((c) => c.entries))).map((e) => e.record.i)).toEqual(range(0, 53));
});

test('an acked message breaking the admission rule stops the read after the chunks before it', () => {
  const tooLong = 'x'.repeat(DEFAULT_ADMISSION.maxChunkIdBytes + 1);
  const { chunks, error } = coalesceOne([
    encodeMessage('app.a', t, { i: 0 }, { chunk: 'ok' }),
    encodeMessage('app.a', t, { i: 1 }, { chunk: tooLong }),
    encodeMessage('app.a', t, { i: 2 }, { chunk: 'never' }),
  ]);
  expect(summary(chunks)).toEqual(['app.a:message:1:ok']);
  expect(codeOf(error)).toBe(ProtocolErrorCode.BadChunkId);
  const deep = coalesceOne(
    [encodeMessage('app.a', t, { a: { b: { c: 1 } } }, { chunk: 'd' })],
    coalescer({ ...DEFAULT_ADMISSION, maxRecordDepth: 2 }),
  );
  expect(deep.chunks).toEqual([]);
  expect(codeOf(deep.error)).toBe(ProtocolErrorCode.TooDeep);
});

test('an acked message on the fast path (its tag admitted just before) is refused for what the general path refuses; other ids and options give what parseRequest gives', () => {
  const first = encodeMessage('app.a', t, { i: 0 }, { chunk: 'first' });
  const rawTimeAcked = (time: number[], record: Record<string, unknown>, chunk: string) =>
    Buffer.concat([Buffer.from([0x94]), pack('app.a'), Buffer.from(time), pack(record), pack({ chunk })]);
  const nanos = rawTimeAcked([0xd7, 0x00, 0, 0, 0, 1, 0x3b, 0x9a, 0xca, 0x00], { i: 1 }, 'n');
  const badTime = coalesceOne([first, nanos]);
  expect(summary(badTime.chunks)).toEqual(['app.a:message:1:first']);
  expect(codeOf(badTime.error)).toBe(ProtocolErrorCode.BadTime);
  const capped = coalescer({ ...DEFAULT_ADMISSION, maxEventBytes: 20 });
  const over = coalesceOne(
    [encodeMessage('app.a', t, {}, { chunk: 'a' }), encodeMessage('app.a', t, { pad: 'x'.repeat(20) }, { chunk: 'b' })],
    capped,
  );
  expect(summary(over.chunks)).toEqual(['app.a:message:1:a']);
  expect(codeOf(over.error)).toBe(ProtocolErrorCode.EventTooLarge);
  const shallow = coalescer({ ...DEFAULT_ADMISSION, maxRecordDepth: 2 });
  const deep = coalesceOne(
    [encodeMessage('app.a', t, { a: { b: 1 } }, { chunk: 'a' }), encodeMessage('app.a', t, { a: { b: { c: 1 } } }, { chunk: 'b' })],
    shallow,
  );
  expect(summary(deep.chunks)).toEqual(['app.a:message:1:a']);
  expect(codeOf(deep.error)).toBe(ProtocolErrorCode.TooDeep);
  const idCapped = coalescer({ ...DEFAULT_ADMISSION, maxChunkIdBytes: 8 });
  const longId = coalesceOne(
    [encodeMessage('app.a', t, { i: 0 }, { chunk: 'a' }), encodeMessage('app.a', t, { i: 1 }, { chunk: 'x'.repeat(9) })],
    idCapped,
  );
  expect(summary(longId.chunks)).toEqual(['app.a:message:1:a']);
  expect(codeOf(longId.error)).toBe(ProtocolErrorCode.BadChunkId);

  const frames = [
    first,
    encodeMessage('app.a', t, { i: 1 }, { chunk: '' }),
    encodeMessage('app.a', t, { i: 2 }, { chunk: 'y'.repeat(31) }), // the longest fixstr
    encodeMessage('app.a', t, { i: 3 }, { chunk: 'z'.repeat(32) }), // str8: the general path
    encodeMessage('app.a', t, { i: 4 }, { chunk: Buffer.from('bin-id') as unknown as string }),
    encodeMessage('app.a', t, { i: 5 }, { chunk: 'ü-id' }),
    encodeMessage('app.a', t, { i: 6 }, { chunk: 'with-size', size: 1 } as { chunk: string }),
    encodeMessage('app.a', 1700000005, { i: 7 }, { chunk: 'int-time' }),
    encodeMessage('app.a', t, { i: 8, deep: { a: [1, { b: 2 }] } }, { chunk: 'nested' }),
  ];
  const { chunks, error } = coalesceOne(frames);
  expect(error).toBeNull();
  expect(chunks).toHaveLength(frames.length);
  frames.forEach((frame, i) => {
    const parsed = parseRequest(Buffer.from(frame));
    expect([i, chunks[i].chunkId, chunks[i].entries.equals(parsed.entries), chunks[i].ack?.equals(parsed.ack ?? Buffer.alloc(0))]).toEqual([
      i,
      parsed.chunkId,
      true,
      true,
    ]);
  });
});

describe('mergeAcked (the forwarder)', () => {
  const merging = (admission = DEFAULT_ADMISSION) => new MessageCoalescer(admission, DEFAULT_MAX_DECOMPRESSED_BYTES, true);
  const ackOf = (frame: Buffer) => encodeAck(parseRequest(Buffer.from(frame)).ack ?? Buffer.alloc(0));

  test('a run of acked messages of one tag in one read becomes one chunk with their ids, entry sizes and acks, in order', () => {
    const frames = [
      encodeMessage('app.a', t, { i: 0 }),
      ...Array.from({ length: 50 }, (_, i) => encodeMessage('app.a', t, { i: i + 1, deep: { a: [1] } }, { chunk: `id-${i}` })),
      encodeMessage('app.a', t, { i: 51 }, { chunk: 'alone' }),
      encodeMessage('app.a', t, { i: 52 }),
      encodeMessage('app.b', t, { i: 53 }, { chunk: Buffer.from('binary-id') as unknown as string }),
      encodeMessage('app.b', t, { i: 54 }, { chunk: 'b-2' }),
      encodeMessage('app.c', t, { i: 55 }, { chunk: 'c-1' }),
    ];
    const { chunks, error } = coalesceOne(frames, merging());
    expect(error).toBeNull();
    // The plain message and the tag changes cut runs; 'alone' does not: it joins the run of app.a before it.
    expect(chunks.map((c) => `${c.tag}:${c.count}:${c.chunkId ?? c.ids?.chunkIds.length}`)).toEqual([
      'app.a:1:undefined',
      'app.a:51:51',
      'app.a:1:undefined',
      'app.b:2:2',
      'app.c:1:c-1', // a run of one keeps its own id and ack
    ]);
    const run = chunks[1].ids;
    expect(run?.chunkIds).toEqual([...Array.from({ length: 50 }, (_, i) => `id-${i}`), 'alone']);
    const singles = frames.slice(1, 52).map((f) => parseRequest(Buffer.from(f)));
    expect(run?.sizes).toEqual(singles.map((p) => p.entries.length));
    expect(chunks[1].entries.equals(Buffer.concat(singles.map((p) => p.entries)))).toBe(true);
    expect(run?.acks.equals(Buffer.concat(frames.slice(1, 52).map(ackOf)))).toBe(true);
    expect(chunks[1].ack).toBeUndefined();
    expect(chunks[1].chunkId).toBeUndefined();
    expect(chunks[3].ids?.chunkIds).toEqual([Buffer.from('binary-id').toString('base64'), 'b-2']);
    expect(chunks[3].ids?.acks.equals(Buffer.concat(frames.slice(53, 55).map(ackOf)))).toBe(true);
    expect(chunks[4].ack?.equals(pack('c-1'))).toBe(true);
    expect(decodeEntries(Buffer.concat(chunks.map((c) => c.entries))).map((e) => e.record.i)).toEqual(range(0, 56));
  });

  test('runs over many reads keep their acks (the ack slab is replaced mid-run), and a refusal ends the run before it', () => {
    const c = merging();
    const id = (i: number) => `a-rather-long-chunk-id-${String(i).padStart(8, '0')}`;
    const frames = Array.from({ length: 6000 }, (_, i) => encodeMessage('app.a', t, { i }, { chunk: id(i) }));
    const reads = [Buffer.concat(frames.slice(0, 1000)), Buffer.concat(frames.slice(1000, 4000)), Buffer.concat(frames.slice(4000))];
    const { batches, error } = coalesceReads(reads, c);
    expect(error).toBeNull();
    expect(batches.map((b) => b.map((x) => x.count))).toEqual([[1000], [3000], [2000]]);
    const all = batches.flat();
    expect(all.flatMap((x) => x.ids?.chunkIds)).toEqual(range(0, 6000).map(id));
    expect(Buffer.concat(all.map((x) => x.ids?.acks ?? Buffer.alloc(0))).equals(Buffer.concat(frames.map(ackOf)))).toBe(true);
    expect(decodeEntries(Buffer.concat(all.map((x) => x.entries))).map((e) => e.record.i)).toEqual(range(0, 6000));

    const tooLong = 'x'.repeat(DEFAULT_ADMISSION.maxChunkIdBytes + 1);
    const refused = coalesceOne(
      [
        encodeMessage('app.a', t, { i: 0 }, { chunk: 'ok-0' }),
        encodeMessage('app.a', t, { i: 1 }, { chunk: 'ok-1' }),
        encodeMessage('app.a', t, { i: 2 }, { chunk: tooLong }),
        encodeMessage('app.a', t, { i: 3 }, { chunk: 'never' }),
      ],
      merging(),
    );
    expect(refused.chunks.map((x) => x.ids?.chunkIds)).toEqual([['ok-0', 'ok-1']]);
    expect(codeOf(refused.error)).toBe(ProtocolErrorCode.BadChunkId);
  });
});
