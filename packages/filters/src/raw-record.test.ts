import { Packr } from 'msgpackr';
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
