import { isStackOverflow } from './admission';
import { UnencodableRecord, encodeEntry, encodeMessage, packPair, packRecord } from './encoder';
import { decodeEntries } from './entries';
import { EventTime } from './event-time';

const t = new EventTime(1700000001, 100000001);

/** What `fn` threw (fails when it returned). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

test.each([
  ['the record', { constructor: 1, toJSON: 2, a: 1 }, '$'],
  ['a nested map', { a: [{ ok: 1 }, { constructor: 'c', toJSON: 'x' }] }, '$.a[1]'],
  ['a map under an odd key', { 'a b': { constructor: null, toJSON: true } }, '$["a b"]'],
])('a record msgpackr refuses (%s with keys constructor and toJSON that is no function) is UnencodableRecord', (_what, record, path) => {
  for (const encode of [() => encodeEntry(t, record), () => encodeMessage('app', t, record), () => packRecord(record)]) {
    const err = thrown(encode);
    expect(err).toBeInstanceOf(UnencodableRecord);
    expect((err as UnencodableRecord).path).toBe(path);
    expect((err as Error).message).toBe(
      `the map at ${path} has a "constructor" key and a "toJSON" key that is not a function, which msgpackr calls`,
    );
    expect((err as Error).cause).toBeInstanceOf(TypeError);
  }
});

test.each([
  ['the value', 'k', { constructor: 1, toJSON: 2 }, '$.k'],
  ['a map in the value under an odd key', 'a b', [{ constructor: 'c', toJSON: 'x' }], '$["a b"][0]'],
])('one pair whose value msgpackr refuses (%s) is UnencodableRecord from packPair, its path under the key', (_what, key, value, path) => {
  const err = thrown(() => packPair(key, value));
  expect(err).toBeInstanceOf(UnencodableRecord);
  expect((err as UnencodableRecord).path).toBe(path);
  expect((err as Error).cause).toBeInstanceOf(TypeError);
});

test("packPair writes the pair as it is in the record's map; other errors propagate as they are", () => {
  const record = { k: { constructor: 1, toJSON: 0, n: [1, 'x'] } };
  expect(Buffer.concat([Buffer.from([0x81]), packPair('k', record.k)])).toEqual(packRecord(record));
  const getter = {
    get a(): unknown {
      return (null as unknown as { a: unknown }).a;
    },
  };
  expect(thrown(() => packPair('k', getter))).not.toBeInstanceOf(UnencodableRecord);
  expect(thrown(() => packPair('k', 2n ** 64n))).toBeInstanceOf(RangeError);
});

test('keys constructor and toJSON that msgpackr can pack (toJSON falsy, or no constructor key) encode as they are', () => {
  const records = [{ constructor: 1, toJSON: 0 }, { toJSON: 'x' }, { constructor: 'c' }];
  const entries = Buffer.concat(records.map((r) => encodeEntry(t, r)));
  expect(decodeEntries(entries).map((e) => e.record)).toEqual(records);
});

test.each([
  [
    'a getter that throws a TypeError',
    () => ({
      get a(): unknown {
        return (null as unknown as { a: unknown }).a;
      },
    }),
    TypeError,
  ],
  [
    // the shape of a refused map, but toJSON is a function: its own TypeError is not msgpackr's refusal
    'a toJSON function that throws a TypeError, beside a constructor key',
    () => ({
      m: {
        constructor: 1,
        toJSON(): never {
          throw new TypeError('own bug');
        },
      },
    }),
    TypeError,
  ],
  ['a bigint past 64 bits', () => ({ n: 2n ** 64n }), RangeError],
])('%s propagates as it is, not as UnencodableRecord', (_what, record, type) => {
  const err = thrown(() => encodeEntry(t, record()));
  expect(err).toBeInstanceOf(type);
  expect(err).not.toBeInstanceOf(UnencodableRecord);
});

test('a record nested past the stack propagates as the stack overflow (the callers map it), even with a refused map below', () => {
  let deep: Record<string, unknown> = { constructor: 1, toJSON: 2 };
  for (let i = 0; i < 20_000; i++) deep = { a: deep };
  const err = thrown(() => encodeEntry(t, deep));
  expect(isStackOverflow(err)).toBe(true);
  expect(err).not.toBeInstanceOf(UnencodableRecord);
});
