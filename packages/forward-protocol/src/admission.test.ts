import {
  DEFAULT_ADMISSION,
  MAX_EVENT_SECONDS,
  admitChunk,
  admitEntries,
  asAdmissionError,
  checkChunkId,
  checkChunkIdValue,
  checkTag,
  clip,
} from './admission';
import { encodeEntry, encodeMessage, encodePackedForward } from './encoder';
import { EventTime } from './event-time';
import { parseJsonRequest } from './json-request';
import { parseRequest } from './request';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

/** `[time, record]` with the time given as raw msgpack bytes. */
function rawEntry(time: Buffer, record: Buffer = Buffer.from([0x80])): Buffer {
  return Buffer.concat([Buffer.from([0x92]), time, record]);
}
const float64 = (v: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(v, 1);
  return b;
};
const uint64 = (v: bigint) => {
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(v, 1);
  return b;
};
const eventTime = (s: number, ns: number) => {
  const b = Buffer.alloc(10);
  b[0] = 0xd7;
  b.writeUInt32BE(s, 2);
  b.writeUInt32BE(ns, 6);
  return b;
};
/** `{a: {a: … {}}}` nested `depth` maps deep (the record itself counts). */
function nested(depth: number): Buffer {
  const open = Buffer.from([0x81, 0xa1, 0x61]);
  return Buffer.concat([...Array.from({ length: depth - 1 }, () => open), Buffer.from([0x80])]);
}

describe('tags', () => {
  test.each([
    ['app.web', undefined],
    ['kube.var.log.containers.ü-日本', undefined],
    ['', 'TRB_FWD_BAD_TAG'],
    ['a\u0000b', 'TRB_FWD_BAD_TAG'],
    ['a\nb', 'TRB_FWD_BAD_TAG'],
    ['a\u007fb', 'TRB_FWD_BAD_TAG'],
    ['a\u0085b', 'TRB_FWD_BAD_TAG'],
    ['a\ufffdb', 'TRB_FWD_BAD_TAG'],
    ['a\ud800b', 'TRB_FWD_BAD_TAG'],
  ])('%j → %s', (tag, expected) => {
    expect(code(() => checkTag(tag))).toBe(expected);
  });

  test('length is counted in UTF-8 bytes, up to 1024', () => {
    expect(code(() => checkTag('x'.repeat(1024)))).toBeUndefined();
    expect(code(() => checkTag('x'.repeat(1025)))).toBe('TRB_FWD_BAD_TAG');
    expect(code(() => checkTag('é'.repeat(512)))).toBeUndefined();
    expect(code(() => checkTag('é'.repeat(513)))).toBe('TRB_FWD_BAD_TAG');
  });

  test('a 64 KiB tag is refused before anything is allocated for it downstream', () => {
    const frame = encodeMessage('t'.repeat(70_000), 1700000000, { a: 1 });
    expect(code(() => parseRequest(frame, { maxDecompressedBytes: 1 << 20, admission: DEFAULT_ADMISSION }))).toBe('TRB_FWD_BAD_TAG');
  });
});

test('chunk ids are bounded', () => {
  expect(code(() => checkChunkId('c'.repeat(128)))).toBeUndefined();
  expect(code(() => checkChunkId('c'.repeat(129)))).toBe('TRB_FWD_BAD_CHUNK_ID');
  const frame = encodePackedForward('t', encodeEntry(1700000000, { a: 1 }), { chunk: 'k'.repeat(70_000) });
  expect(code(() => parseRequest(frame, { maxDecompressedBytes: 1 << 20, admission: DEFAULT_ADMISSION }))).toBe('TRB_FWD_BAD_CHUNK_ID');
});

test('a chunk id read from its bytes is bounded as its text is: str by its UTF-8 text, bin by its base64', () => {
  const str = (text: string) => {
    const bytes = Buffer.from(text);
    return Buffer.concat([Buffer.from([0xd9, bytes.length]), bytes]);
  };
  const bin = (n: number) => Buffer.concat([Buffer.from([0xc4, n]), Buffer.alloc(n, 7)]);
  const check = (value: Buffer) => code(() => checkChunkIdValue(value, 0, value.length));
  expect(check(str('c'.repeat(128)))).toBeUndefined();
  expect(check(str('c'.repeat(129)))).toBe('TRB_FWD_BAD_CHUNK_ID');
  expect(check(str('é'.repeat(64)))).toBeUndefined(); // 128 bytes of text
  expect(check(str('é'.repeat(65)))).toBe('TRB_FWD_BAD_CHUNK_ID');
  expect(check(Buffer.concat([Buffer.from([0xd9, 50]), Buffer.alloc(50, 0xff)]))).toBe('TRB_FWD_BAD_CHUNK_ID'); // 50 invalid bytes: 150 bytes of U+FFFD
  expect(check(bin(96))).toBeUndefined(); // base64: 128
  expect(check(bin(97))).toBe('TRB_FWD_BAD_CHUNK_ID');
});

describe('event times', () => {
  test.each([
    ['uint 0', undefined, Buffer.from([0x00])],
    ['uint 2^32-1', undefined, Buffer.from([0xce, 0xff, 0xff, 0xff, 0xff])],
    ['uint64 2^32', 'TRB_FWD_BAD_TIME', uint64(2n ** 32n)],
    ['uint64 2^53', 'TRB_FWD_BAD_TIME', uint64(2n ** 53n)],
    ['uint64 10^13', 'TRB_FWD_BAD_TIME', uint64(10n ** 13n)],
    ['negative int', 'TRB_FWD_BAD_TIME', Buffer.from([0xff])],
    ['float 1.5e9', undefined, float64(1.5e9)],
    ['float NaN', 'TRB_FWD_BAD_TIME', float64(Number.NaN)],
    ['float +Inf', 'TRB_FWD_BAD_TIME', float64(Number.POSITIVE_INFINITY)],
    ['float -Inf', 'TRB_FWD_BAD_TIME', float64(Number.NEGATIVE_INFINITY)],
    ['EventTime ns 999999999', undefined, eventTime(1700000000, 999_999_999)],
    ['EventTime ns 1e9', 'TRB_FWD_BAD_TIME', eventTime(1700000000, 1_000_000_000)],
    ['[EventTime, {}]', undefined, Buffer.concat([Buffer.from([0x92]), eventTime(1, 0), Buffer.from([0x80])])],
    ['string', 'TRB_FWD_SHAPE', Buffer.from([0xa1, 0x31])],
  ])('%s → %s', (_name, expected, time) => {
    expect(code(() => admitEntries(rawEntry(time)))).toBe(expected);
  });

  test('JSON times follow the same range', () => {
    expect(code(() => parseJsonRequest('["t", 1e10, {"a":1}]'))).toBe('TRB_FWD_BAD_TIME');
    expect(code(() => parseJsonRequest('["t", -1, {"a":1}]'))).toBe('TRB_FWD_BAD_TIME');
    expect(parseJsonRequest('["t", 1700000000.5, {"a":1}]').count).toBe(1);
  });
});

describe('records', () => {
  test('nesting is bounded without recursion: 64 deep passes, 65 and 100,000 deep are refused', () => {
    expect(admitEntries(rawEntry(Buffer.from([0x01]), nested(64)))).toBe(1);
    expect(code(() => admitEntries(rawEntry(Buffer.from([0x01]), nested(65))))).toBe('TRB_FWD_TOO_DEEP');
    expect(code(() => admitEntries(rawEntry(Buffer.from([0x01]), nested(100_000))))).toBe('TRB_FWD_TOO_DEEP');
  });

  test('ext types, binary and non-string keys are accepted (egress carries them)', () => {
    const record = Buffer.from([0x83, 0x01, 0xd4, 0x05, 0x00, 0xc3, 0xd5, 0x42, 0x01, 0x02, 0xa1, 0x62, 0xc4, 0x01, 0xff]);
    expect(admitEntries(rawEntry(Buffer.from([0x01]), record))).toBe(1);
  });

  test('a record that is not a map, or is cut short, is a shape error', () => {
    expect(code(() => admitEntries(rawEntry(Buffer.from([0x01]), Buffer.from([0x90]))))).toBe('TRB_FWD_SHAPE');
    expect(code(() => admitEntries(rawEntry(Buffer.from([0x01]), Buffer.from([0x82, 0x01]))))).toBe('TRB_FWD_SHAPE');
  });

  test('one event over maxEventBytes is refused; entries at the limit pass', () => {
    const entry = encodeEntry(1700000000, { pad: 'x'.repeat(1000) });
    const limits = { ...DEFAULT_ADMISSION, maxEventBytes: entry.length };
    expect(admitEntries(Buffer.concat([entry, entry]), limits)).toBe(2);
    expect(code(() => admitEntries(entry, { ...limits, maxEventBytes: entry.length - 1 }))).toBe('TRB_FWD_EVENT_TOO_LARGE');
  });

  test('deep JSON is TRB_FWD_TOO_DEEP, not a stack overflow', () => {
    const deep = `["t", 1, ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}]`;
    expect(code(() => parseJsonRequest(deep))).toBe('TRB_FWD_TOO_DEEP');
    const overflow = new RangeError('Maximum call stack size exceeded');
    expect((asAdmissionError(overflow) as { code: string }).code).toBe('TRB_FWD_TOO_DEEP');
  });
});

test('admitChunk checks tag, chunk id and entries of a chunk built elsewhere', () => {
  const entries = encodeEntry(1700000000, { a: 1 });
  expect(admitChunk({ tag: 'ok', entries, count: 1, mode: 'forward' }).count).toBe(1);
  expect(code(() => admitChunk({ tag: 'a\u0000b', entries, count: 1, mode: 'forward' }))).toBe('TRB_FWD_BAD_TAG');
  expect(code(() => admitChunk({ tag: 'ok', entries, count: 1, mode: 'forward', chunkId: 'x'.repeat(200) }))).toBe('TRB_FWD_BAD_CHUNK_ID');
});

test('seconds with a fraction carry into the seconds, and nine digits are printed', () => {
  // (1.9999999996 - 1) * 1e9 rounds to 1e9: it must become the next second.
  expect(EventTime.fromSeconds(1.9999999996)).toEqual(new EventTime(2, 0));
  expect(EventTime.fromSeconds(1700000000.25)).toEqual(new EventTime(1700000000, 250_000_000));
  expect(new EventTime(0, 1_000_000_000).toRfc3339()).toBe('1970-01-01T00:00:01.000000000Z');
  expect(new EventTime(MAX_EVENT_SECONDS - 1, 5).toRfc3339()).toBe('2106-02-07T06:28:15.000000005Z');
});

test('clip cuts long client strings and says how long they were', () => {
  expect(clip('short')).toBe('short');
  const cut = clip('h'.repeat(8 * 1024 * 1024));
  expect(cut.length).toBeLessThan(300);
  expect(cut).toContain('8388608 chars');
});

test('client-supplied strings in error messages are cut (log amplification)', () => {
  const frame = encodePackedForward('t', encodeEntry(1700000000, { a: 1 }));
  // Same request with a 100 KB "compressed" option value.
  const withCodec = Buffer.concat([
    Buffer.from([0x93]),
    frame.subarray(1),
    Buffer.from([0x81, 0xaa]),
    Buffer.from('compressed'),
    Buffer.from([0xdb, 0x00, 0x01, 0x86, 0xa0]),
    Buffer.alloc(100_000, 0x7a),
  ]);
  let message = '';
  try {
    parseRequest(withCodec);
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toContain('is not supported');
  expect(message.length).toBeLessThan(300);
  let json = '';
  try {
    parseJsonRequest(`["t", 1, {"a": ${'x'.repeat(100_000)}}]`);
  } catch (err) {
    json = (err as Error).message;
  }
  expect(json).toMatch(/^Invalid JSON request/);
  expect(json.length).toBeLessThan(400);
});
