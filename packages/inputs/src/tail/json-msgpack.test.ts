import { EventTime, encodeEntry } from '@tributary/forward-protocol';
import { JsonTranscoder } from './json-msgpack';

const t = new EventTime(1700000000, 0);
/** What the general path writes for a record: JSON.parse, then the forward encoder (the entry's map, after its time). */
const general = (text: string): Buffer => {
  const entry = encodeEntry(t, JSON.parse(text));
  return entry.subarray(1 + encodeEntry(t, {}).length - 2); // [0x92, time…, map…]: the map after the time
};

const transcoder = new JsonTranscoder();
/** The fast path's map for `text`, or null when it leaves the line to JSON.parse. */
function fast(text: string | Buffer, extraPairs = 0): Buffer | null {
  const src = Buffer.isBuffer(text) ? text : Buffer.from(text);
  // the line sits inside a larger read, as in the tail input
  const read = Buffer.concat([Buffer.from('xx\n'), src, Buffer.from('\nyy')]);
  const out = Buffer.alloc(JsonTranscoder.maxBytes(src.length) + 8, 0xee);
  const end = transcoder.transcode(read, 3, 3 + src.length, out, 4, extraPairs);
  if (end < 0) return null;
  expect(end).toBeLessThanOrEqual(4 + JsonTranscoder.maxBytes(src.length));
  return out.subarray(4, end);
}

test('lines as apps write them give the bytes JSON.parse and the encoder give', () => {
  const lines = [
    '{}',
    '{"level":"info","msg":"GET /api/v1/items/42 200","seq":42,"ms":1.25,"ok":true,"err":null}',
    ' { "a" : [ 1 , 2 , { "b" : [ ] } ] , "c" : { } } ',
    '{"ts":"2026-12-07T03:00:00.000Z","user":{"id":977,"roles":["admin","dev"],"score":-12.5e-3}}',
    '{"unicode":"ünïcødé ✓ 日本語 😀","esc":"line\\nnext\\ttab \\"quoted\\" back\\\\slash \\/ \\b\\f\\r","u":"\\u00e9\\u2713\\ud83d\\ude00"}',
    `{"long":"${'x'.repeat(40)}","longer":"${'y'.repeat(300)}","longest":"${'z'.repeat(70000)}"}`,
    `{"many":[${Array.from({ length: 20 }, (_, i) => i).join(',')}],${Array.from({ length: 17 }, (_, i) => `"k${i}":${i}`).join(',')}}`,
    '{"ints":[0,-0,1,127,128,255,256,65535,65536,4294967295,4294967296,-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649]}',
    '{"floats":[0.0,-0.0,1.0,1.5,1e3,1E-3,2e+10,123456789012345678,9007199254740993,1.7976931348623157e308,5e-324,0.1]}',
    '{"deep":{"a":{"b":{"c":{"d":[[[[{"e":"f"}]]]]}}}}}',
    '{"__proto__":{"x":1},"constructor":"c"}',
    '{"01":"not an index","-1":"nor this","4294967295":"nor this one","1.5":"nor this"}',
  ];
  for (const line of lines) expect([line, fast(line)?.toString('hex')]).toEqual([line, general(line).toString('hex')]);
});

test('a map of 64 keys and a nested map of 64 more take the fast path; surrogate pairs in any string length do too', () => {
  const keys = (p: string, n = 64) => Array.from({ length: n }, (_, i) => `"${p}${i}":${i}`).join(',');
  for (const line of [
    `{${keys('a')}}`,
    `{"x":{${keys('b')}},${keys('c', 63)}}`, // 64 keys at the top, 64 in the nested map
    `{"short":"\\ud83d\\ude00","long":"${'x'.repeat(100)}\\ud83d\\ude00${'y'.repeat(100)}"}`,
  ]) {
    expect([line.slice(0, 40), fast(line)?.toString('hex')]).toEqual([line.slice(0, 40), general(line).toString('hex')]);
  }
});

test('extra pairs are counted in the top map header, for the caller to write after it', () => {
  expect(fast('{"a":1}', 1)?.toString('hex')).toBe('82a16101');
  expect(
    fast(`{${Array.from({ length: 15 }, (_, i) => `"k${i}":0`).join(',')}}`, 1)
      ?.subarray(0, 3)
      .toString('hex'),
  ).toBe('de0010');
});

test('what the fast path leaves to JSON.parse: not one object, bad JSON, bytes that are not UTF-8, keys JSON.parse would reorder or merge', () => {
  const left = [
    '',
    '   ',
    '[1,2]',
    '"str"',
    '42',
    'null',
    '{"a":1} trailing',
    '{"a":1}{"b":2}',
    '{"a":1,}',
    '{"a" 1}',
    "{'a':1}",
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":1e}',
    '{"a":-}',
    '{"a":+1}',
    '{"a":tru}',
    '{"a":"unterminated}',
    '{"a":"bad \\x escape"}',
    '{"a":"bad \\u12 escape"}',
    '{"a":"raw\ttab"}',
    '{"a":[1,2}',
    '{"a":1', // cut short
    '{"a":1,"a":2}', // JSON.parse keeps the last
    '{"x":{"a":1,"b":2,"a":3}}',
    '{"b":1,"2":2}', // JavaScript puts index keys first
    '{"0":1}',
    '{"\\u0061":1}', // an escaped key
    `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`, // deeper than 64
    // lone surrogates: msgpackr writes one as three bytes in a string under 64 units, as U+FFFD in a longer one
    '{"lone":"\\ud83d x"}',
    '{"lone":"x \\ude00"}',
    '{"high-at-end":"\\ud800"}',
    `{"long":"\\ud800${'x'.repeat(70)}"}`,
    `{"long":"${'x'.repeat(70)}\\udfff"}`,
    '{"pair-then-lone":"\\ud83d\\ude00\\ud83d"}',
    // more keys than the duplicate check takes (it compares each with the earlier ones)
    `{${Array.from({ length: 65 }, (_, i) => `"k${i}":0`).join(',')}}`,
  ];
  for (const line of left) expect([line, fast(line)]).toEqual([line, null]);
  expect(fast(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]))).toBeNull(); // {"a":"\xff\xfe"}
  // and every one of those the general path takes: JSON.parse refuses it, or its result is what the encoder writes
  for (const line of left) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    expect(() => encodeEntry(t, parsed as Record<string, unknown>)).not.toThrow();
  }
});

test('random objects: the same bytes as JSON.parse and the encoder, 5,000 lines', () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const chars = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\u0001', 'é', '✓', '😀', '\u2028', '{', '}'];
  const str = () => Array.from({ length: Math.floor(rand() * (rand() < 0.1 ? 300 : 12)) }, () => pick(chars)).join('');
  const num = () =>
    pick([
      () => Math.floor(rand() * 300) - 150,
      () => Math.floor(rand() * 2 ** 34) - 2 ** 33,
      () => (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20),
      () => Math.floor(rand() * 2 ** 53),
    ])();
  const value = (depth: number): unknown => {
    const r = rand();
    if (depth > 3 || r < 0.3) return str();
    if (r < 0.5) return num();
    if (r < 0.6) return pick([true, false, null]);
    if (r < 0.8) return Array.from({ length: Math.floor(rand() * (rand() < 0.1 ? 20 : 4)) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const object = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    const n = Math.floor(rand() * (rand() < 0.1 ? 20 : 5));
    for (let i = 0; i < n; i++) o[`k${str().replace(/[\\"\u0000-\u001f]/g, '')}${i}`] = value(depth);
    return o;
  };
  let compared = 0;
  for (let i = 0; i < 5000; i++) {
    const text = JSON.stringify(object(0), null, rand() < 0.2 ? 1 : undefined).replace(/\n/g, ' ');
    const got = fast(text);
    if (got === null) continue; // a key the fast path leaves to JSON.parse (none are generated, so this stays rare)
    compared++;
    expect([text, got.toString('hex')]).toEqual([text, general(text).toString('hex')]);
  }
  expect(compared).toBeGreaterThan(4900);
});
