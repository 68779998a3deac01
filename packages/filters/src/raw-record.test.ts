import { UnencodableRecord } from '@tributary/forward-protocol';
import { Packr } from 'msgpackr';
import { Output } from './output';
import { RawRecord } from './raw-record';

const packr = new Packr({ useRecords: false });
/** A msgpack map of the pairs as given, repeated keys and all (a JS object cannot hold those). */
function map(pairs: Array<[string, unknown]>): Buffer {
  const header = pairs.length < 16 ? Buffer.from([0x80 | pairs.length]) : Buffer.from([0xde, 0, pairs.length]);
  return Buffer.concat([header, ...pairs.flatMap(([k, v]) => [packr.pack(k), packr.pack(v)])]);
}
const parses = (pairs: Array<[string, unknown]>) => {
  const b = map(pairs);
  return RawRecord.parse(b, 0, b.length) !== null;
};

test('a record with a repeated key is left to the decoding path (parse gives null); one with distinct keys is parsed', () => {
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  expect(
    parses([
      ['a', 1],
      ['a', 2],
    ]),
  ).toBe(false);
  expect(
    parses([
      ['', 1],
      ['x', 2],
      ['', 3],
    ]),
  ).toBe(false);
  for (let n = 2; n <= 40; n++) {
    const distinct = keys.slice(0, n).map((k, i): [string, unknown] => [k, i]);
    expect(parses(distinct)).toBe(true);
    // the last key repeats each earlier one in turn
    for (let j = 0; j < n - 1; j++) expect(parses([...distinct.slice(0, n - 1), [keys[j], 'again']])).toBe(false);
  }
  // keys of one length and the same first and last bytes (the same hash slot) but distinct
  expect(
    parses([
      ['axb', 1],
      ['ayb', 2],
      ['azb', 3],
      ['', 4],
      ['ab', 5],
    ]),
  ).toBe(true);
});

test.each([
  ['added after the pairs as they came: the entry copied, then the pair', 'z'],
  ['set in place of a pair: the pairs written one by one', 'a'],
])('a pair whose value the encoder refuses (%s) throws UnencodableRecord and leaves nothing of the entry written', (_what, key) => {
  const entry = Buffer.concat([
    Buffer.from([0x92, 0x01]),
    map([
      ['a', 1],
      ['b', 'x'],
    ]),
  ]);
  const before = Buffer.from('entries before');
  const out = new Output(256);
  out.begin();
  out.bytes(before);
  const record = RawRecord.parse(entry, 2, entry.length) as RawRecord;
  record.set(key, { constructor: 1, toJSON: 2 });
  expect(() => record.writeEntry(out, 0, 2)).toThrow(UnencodableRecord);
  expect(() => record.writeEntry(out, 0, 2)).toThrow(`the map at $.${key} has a "constructor" key`);
  expect(out.view()).toEqual(before);
  out.bytes(entry);
  expect(out.view()).toEqual(Buffer.concat([before, entry]));
});
