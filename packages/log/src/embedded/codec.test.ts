import { crc32 } from 'node:zlib';
import type { LogRecord } from '../durable-log';
import { HEADER, bodyKey, decodeBody, encodeRecord, scan, unencodable } from './codec';

const rec = (i: number, extra: Partial<LogRecord> = {}): LogRecord => ({
  tag: `app.${i}`,
  key: i % 2 ? `chunk-${i}` : '',
  count: i,
  entries: Buffer.from(`entries of record ${i} ✓`),
  ...extra,
});

function encode(records: LogRecord[]): { data: Buffer; sizes: number[] } {
  const out: Buffer[] = [];
  const sizes = records.map((r) => encodeRecord(r, out));
  return { data: Buffer.concat(out), sizes };
}

test('records round-trip: tag, key, count and entries, with their positions and keys', () => {
  const records = [rec(1), rec(2), rec(3, { tag: 'ünïcode.tag', key: 'κλειδί' }), rec(4, { entries: Buffer.alloc(0) })];
  const { data, sizes } = encode(records);
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(data.length);
  const { bodies, positions, end } = scan(data, true);
  expect(end).toBe(data.length);
  expect(positions).toEqual([0, sizes[0], sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2]]);
  expect(bodies.map(decodeBody)).toEqual(records.map(({ tag, key, count, entries }) => ({ tag, key, count, entries })));
  expect(bodies.map(bodyKey)).toEqual(records.map((r) => r.key));
});

test("a caller's crc of the entries gives the same bytes as computing it", () => {
  const r = rec(7);
  expect(encode([{ ...r, entriesCrc: crc32(r.entries) >>> 0 }]).data).toEqual(encode([r]).data);
});

test('a torn tail ends the scan at the last whole record, at every cut point', () => {
  const { data, sizes } = encode([rec(1), rec(2)]);
  for (let cut = sizes[0]; cut < data.length; cut++) {
    const { bodies, end } = scan(data.subarray(0, cut), true);
    expect(end).toBe(sizes[0]);
    expect(bodies.map((b) => decodeBody(b).tag)).toEqual(['app.1']);
  }
});

test('with verify, a flipped byte anywhere in the last record (header, head or entries) cuts it; without, only its length counts', () => {
  const { data, sizes } = encode([rec(1), rec(3)]);
  for (let at = sizes[0]; at < data.length; at++) {
    const bad = Buffer.from(data);
    bad[at] ^= 0x5a;
    const verified = scan(bad, true);
    expect(verified.end).toBe(sizes[0]);
    expect(verified.bodies).toHaveLength(1);
  }
  const bad = Buffer.from(data);
  bad[data.length - 1] ^= 0xff;
  expect(scan(bad, false).bodies).toHaveLength(2);
});

test('a garbage tail whose head lengths point past the body is cut, not thrown on', () => {
  const { data, sizes } = encode([rec(1)]);
  const garbage = Buffer.alloc(HEADER + 5);
  garbage.writeUInt32BE(5, 0);
  garbage.writeUInt16BE(0xfff0, HEADER); // a tag length far past the 5-byte body
  const { bodies, end } = scan(Buffer.concat([data, garbage]), true);
  expect(end).toBe(sizes[0]);
  expect(bodies).toHaveLength(1);
});

test('unencodable names the field over its limit; encodable records pass', () => {
  expect(unencodable(rec(1))).toBeNull();
  expect(unencodable(rec(1, { tag: 't'.repeat(65_535) }))).toBeNull();
  expect(unencodable(rec(1, { tag: 't'.repeat(65_536) }))).toMatch(/tag is 65536 bytes/);
  expect(unencodable(rec(1, { key: 'é'.repeat(40_000) }))).toMatch(/key is 80000 bytes/);
  expect(unencodable(rec(1, { count: 2 ** 32 }))).toMatch(/not a 32-bit count/);
  expect(unencodable(rec(1, { count: -1 }))).toMatch(/not a 32-bit count/);
});
