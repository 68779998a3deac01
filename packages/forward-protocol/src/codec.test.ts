import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeForward, encodeMessage, encodePackedForward, gzippedPackedForwardParts } from './encoder';
import { countEntries, decodeEntries } from './entries';
import { ProtocolErrorCode } from './errors';
import { EventTime, encodeEventTime } from './event-time';
import { parseJsonRequest } from './json-request';
import { parseRequest } from './request';

const t = new EventTime(1700000001, 100000001);

describe('encoder', () => {
  test('EventTime is written as fixext8 type 0, as Fluentd writes it', () => {
    expect(encodeEventTime(t).toString('hex')).toBe('d7006553f10105f5e101');
  });

  test('entries encode to the captured bytes', () => {
    const fixture = parseRequest(new FrameDecoder().push(readFileSync(join(__dirname, '..', 'fixtures', 'fluentd-packed.bin')))[0]);
    const ours = Buffer.concat([1, 2, 3].map((n) => encodeEntry(new EventTime(1700000000 + n, n * 100000001), { msg: `hello ${n}`, n })));
    expect(ours.equals(fixture.entries)).toBe(true);
  });

  test.each([
    ['Message', () => encodeMessage('app', t, { a: 1 }, { chunk: 'c1' }), 'message', 1],
    ['Forward', () => encodeForward('app', [encodeEntry(t, { a: 1 }), encodeEntry(7, { b: 2 })], { chunk: 'c1' }), 'forward', 2],
    ['PackedForward', () => encodePackedForward('app', encodeEntry(t, { a: 1 }), { chunk: 'c1', size: 1 }), 'packed', 1],
    [
      'CompressedPackedForward',
      () =>
        encodePackedForward('app', Buffer.concat([encodeEntry(t, { a: 1 }), encodeEntry(t, { b: 2 })]), {
          chunk: 'c1',
          compressed: 'gzip',
        }),
      'compressed',
      2,
    ],
  ])('%s round-trips', (_name, make, mode, count) => {
    const chunk = parseRequest(make());
    expect(chunk).toMatchObject({ tag: 'app', mode, count, chunkId: 'c1' });
    const [first] = decodeEntries(chunk.entries);
    expect(first.time).toEqual(t);
    expect(first.record).toEqual({ a: 1 });
  });

  test("CompressedPackedForward keeps the sender's gzip bytes beside the entries; entries gzipped once by the sender round-trip", () => {
    const entries = Buffer.concat([encodeEntry(t, { a: 1 }), encodeEntry(t, { b: 2 })]);
    const gzipped = gzipSync(entries, { level: 9 });
    const chunk = parseRequest(Buffer.concat(gzippedPackedForwardParts('app', gzipped, { chunk: 'c1', size: 2 })));
    expect(chunk).toMatchObject({ tag: 'app', mode: 'compressed', count: 2, chunkId: 'c1' });
    expect(chunk.entries.equals(entries)).toBe(true);
    expect(chunk.gzipped?.equals(gzipped)).toBe(true);
    expect(parseRequest(encodePackedForward('app', entries)).gzipped).toBeUndefined();
  });

  test('integer time and ext8 EventTime decode', () => {
    const ext8 = Buffer.concat([Buffer.from([0x92, 0xc7, 0x08, 0x00]), encodeEventTime(t).subarray(2), Buffer.from([0x80])]);
    const [a, b] = decodeEntries(Buffer.concat([encodeEntry(1700000005, { x: 1 }), ext8]));
    expect(a.time).toEqual(new EventTime(1700000005, 0));
    expect(b.time).toEqual(t);
  });

  test('Message mode time 0 becomes now', () => {
    const before = Math.floor(Date.now() / 1000);
    const [e] = decodeEntries(parseRequest(encodeMessage('app', 0, { a: 1 })).entries);
    expect(e.time.seconds).toBeGreaterThanOrEqual(before);
  });

  test('compressed "text" is no compression', () => {
    const frame = encodePackedForward('app', encodeEntry(t, { a: 1 }));
    frame[0] = 0x93; // add Fluentd's option map {size: 1, compressed: "text"}
    const opts = Buffer.from([0x82, 0xa4, ...Buffer.from('size'), 0x01, 0xaa, ...Buffer.from('compressed'), 0xa4, ...Buffer.from('text')]);
    const textFrame = Buffer.concat([frame, opts]);
    expect(parseRequest(textFrame)).toMatchObject({ mode: 'packed', count: 1 });
  });
});

describe('streaming decoder', () => {
  const stream = Buffer.concat([
    encodeMessage('a', t, { i: 1 }),
    Buffer.from([0xc0]), // keep-alive
    encodePackedForward('b', Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeEntry(t, { i, pad: 'x'.repeat(100) })))),
    encodeForward('c', [encodeEntry(t, { i: 3 })]),
  ]);

  test('every split point yields the same frames', () => {
    const whole = new FrameDecoder().push(stream).map((f) => parseRequest(f).tag);
    expect(whole).toEqual(['a', 'b', 'c']);
    for (let cut = 1; cut < stream.length; cut += 7) {
      const d = new FrameDecoder();
      const tags = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))].map((f) => parseRequest(f).tag);
      expect(tags).toEqual(whole);
    }
  });

  test('byte-at-a-time delivery yields the same frames', () => {
    const d = new FrameDecoder();
    const tags: string[] = [];
    for (let i = 0; i < stream.length; i++) for (const f of d.push(stream.subarray(i, i + 1))) tags.push(parseRequest(f).tag);
    expect(tags).toEqual(['a', 'b', 'c']);
  });

  test('a frame over the limit is refused before it is buffered whole', () => {
    const d = new FrameDecoder(1024);
    const big = encodePackedForward('big', encodeEntry(t, { pad: 'x'.repeat(5000) }));
    expect(() => d.push(big.subarray(0, 100))).toThrow(expect.objectContaining({ code: ProtocolErrorCode.FrameTooLarge }));
  });

  test('JSON requests are framed and parsed like Fluentd in_forward', () => {
    const d = new FrameDecoder();
    const text = '["app.json", 1700000001.5, {"a": "x]}"}, {"chunk": "j1"}]\n["app.json", [[1700000002, {"b": 2}]]]';
    const frames = [...d.push(Buffer.from(text.slice(0, 20))), ...d.push(Buffer.from(text.slice(20)))];
    expect(d.format).toBe('json');
    const [m, f] = frames.map((fr) => parseJsonRequest(fr.toString()));
    expect(m).toMatchObject({ tag: 'app.json', count: 1, chunkId: 'j1' });
    expect(decodeEntries(m.entries)[0]).toMatchObject({ time: { seconds: 1700000001, nanoseconds: 500000000 }, record: { a: 'x]}' } });
    expect(f).toMatchObject({ tag: 'app.json', count: 1 });
  });

  test.each([
    ['Message', '["app.json", 1700000001, {"a": {"constructor": 1, "toJSON": 2}}]', 'the record (3rd element)', '$.a'],
    [
      'Forward',
      '["app.json", [[1700000001, {"ok": 1}], [1700000002, {"a": [{"constructor": "c", "toJSON": "x"}]}]]]',
      'the record of entry 1',
      '$.a[0]',
    ],
  ])(
    'a %s JSON request whose record msgpack cannot hold (keys constructor and toJSON that is no function) is TRB_FWD_JSON',
    (_mode, text, what, path) => {
      let err: unknown;
      try {
        parseJsonRequest(text);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ name: 'ProtocolError', code: ProtocolErrorCode.Json, retriable: false });
      expect((err as Error).message).toBe(
        `Invalid JSON request: ${what} cannot be encoded: the map at ${path} has a "constructor" key and a "toJSON" key that is not a function, which msgpackr calls.`,
      );
    },
  );
});

describe('bad input gets a clear, coded error', () => {
  test.each([
    ['not an array', Buffer.from([0x01]), /not an array/],
    ['tag not a string', Buffer.from([0x92, 0x01, 0x02]), /tag/],
    ['record not a map', Buffer.concat([Buffer.from([0x93, 0xa1, 0x61]), encodeEventTime(t), Buffer.from([0x01])]), /record/],
    ['bad entries', encodePackedForward('a', Buffer.from([0x93, 0x01, 0x02, 0x03])), /Entry 0/],
    [
      'unsupported codec',
      Buffer.concat([
        Buffer.from([0x93, 0xa1, 0x61, 0xc4, 0x01, 0x00, 0x81, 0xaa]),
        Buffer.from('compressed'),
        Buffer.from([0xa4]),
        Buffer.from('zstd'),
      ]),
      /zstd/,
    ],
    [
      'corrupt gzip',
      Buffer.concat([
        Buffer.from([0x93, 0xa1, 0x61, 0xc4, 0x03, 0x1f, 0x8b, 0x00, 0x81, 0xaa]),
        Buffer.from('compressed'),
        Buffer.from([0xa4]),
        Buffer.from('gzip'),
      ]),
      /gzip/,
    ],
  ])('%s', (_name, frame, message) => {
    expect(() => parseRequest(frame)).toThrow(message);
  });

  test('decompressed size is bounded', () => {
    const frame = encodePackedForward('a', Buffer.concat(Array.from({ length: 200 }, () => encodeEntry(t, { pad: 'x'.repeat(1000) }))), {
      compressed: 'gzip',
    });
    expect(() => parseRequest(frame, { maxDecompressedBytes: 10_000 })).toThrow(
      expect.objectContaining({ code: ProtocolErrorCode.DecompressTooLarge }),
    );
  });

  test('the never-used byte 0xc1 is malformed msgpack, with its offset', () => {
    expect(() => new FrameDecoder().push(Buffer.from([0x92, 0xa1, 0x61, 0xc1]))).toThrow(/0xc1 at byte offset 3/);
  });

  test('countEntries counts without decoding records', () => {
    const entries = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeEntry(t, { i })));
    expect(countEntries(entries)).toBe(1000);
  });
});

describe('a frame over the limit after complete frames in the same read', () => {
  const t = new EventTime(1700000000, 0);
  const small = (i: number) => encodeMessage('ok', t, { i });
  const big = encodePackedForward('big', encodeEntry(t, { pad: 'x'.repeat(5000) }));

  test('cut short: the complete frames are returned, the error is set and every later push throws it', () => {
    const d = new FrameDecoder(1024);
    const frames = d.push(Buffer.concat([small(1), small(2), big.subarray(0, 100)]));
    expect(frames.map((f) => parseRequest(f).count)).toEqual([1, 1]);
    expect(d.error).toEqual(expect.objectContaining({ code: ProtocolErrorCode.FrameTooLarge }));
    expect(() => d.push(big.subarray(100))).toThrow(expect.objectContaining({ code: ProtocolErrorCode.FrameTooLarge }));
    expect(d.bufferedBytes).toBe(0);
  });

  test('whole in the read: the frames before it are returned, it is not', () => {
    const d = new FrameDecoder(1024);
    const frames = d.push(Buffer.concat([small(1), big, small(2)]));
    expect(frames.map((f) => parseRequest(f).tag)).toEqual(['ok']);
    expect(d.error).toEqual(expect.objectContaining({ code: ProtocolErrorCode.FrameTooLarge }));
  });
});
