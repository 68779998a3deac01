import { AckedIdCursor, encodeAck, forEachAckedId } from './ack';

/** A msgpack str or bin value of `bytes` with the header `kind` picks. */
function value(kind: 'fixstr' | 'str8' | 'str16' | 'str32' | 'bin8' | 'bin16' | 'bin32', bytes: Buffer): Buffer {
  const n = bytes.length;
  const header: Record<typeof kind, Buffer> = {
    fixstr: Buffer.from([0xa0 | n]),
    str8: Buffer.from([0xd9, n]),
    str16: Buffer.from([0xda, n >> 8, n & 0xff]),
    str32: Buffer.from([0xdb, 0, 0, n >> 8, n & 0xff]),
    bin8: Buffer.from([0xc4, n]),
    bin16: Buffer.from([0xc5, n >> 8, n & 0xff]),
    bin32: Buffer.from([0xc6, 0, 0, n >> 8, n & 0xff]),
  };
  return Buffer.concat([header[kind], bytes]);
}

test('the cursor reads every id of acks written back to back, whatever its header, as forEachAckedId does', () => {
  const kinds = ['fixstr', 'str8', 'str16', 'str32', 'bin8', 'bin16', 'bin32'] as const;
  const ids = kinds.map((k, i) => Buffer.from(`${k}-id-${'x'.repeat(i * 7)}`));
  const acks = Buffer.concat(kinds.map((k, i) => encodeAck(value(k, ids[i]))));
  const cursor = new AckedIdCursor().over(acks);
  const seen: Array<[string, boolean]> = [];
  while (cursor.next()) seen.push([acks.toString('latin1', cursor.start, cursor.end), cursor.str]);
  expect(seen).toEqual(kinds.map((k, i) => [ids[i].toString('latin1'), k.startsWith('str') || k === 'fixstr']));
  expect(cursor.next()).toBe(false);
  const viaEach: Array<[number, string, boolean]> = [];
  forEachAckedId(acks, (i, start, end, str) => viaEach.push([i, acks.toString('latin1', start, end), str]));
  expect(viaEach).toEqual(seen.map(([id, str], i) => [i, id, str]));
  // one cursor serves the next run from its start
  expect(cursor.over(acks).next() && acks.toString('latin1', cursor.start, cursor.end)).toBe('fixstr-id-');
});

test('acks cut short or holding no id are refused with the byte where the id should be', () => {
  const whole = encodeAck(value('str8', Buffer.from('abcdef')));
  expect(() => new AckedIdCursor().over(whole.subarray(0, whole.length - 1)).next()).toThrow('The acks hold no id at byte 5.');
  expect(() => new AckedIdCursor().over(whole.subarray(0, 6)).next()).toThrow('The acks hold no id at byte 5.');
  const notAnId = Buffer.concat([whole, encodeAck(Buffer.from([0x01]))]);
  const cursor = new AckedIdCursor().over(notAnId);
  expect(cursor.next()).toBe(true);
  expect(() => cursor.next()).toThrow(`The acks hold no id at byte ${whole.length + 5}.`);
});
