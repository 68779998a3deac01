import { decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { Packr } from 'msgpackr';
import { TIME, chainOf } from './__fixtures__/run';
import { FilterChain } from './chain';
import { Output } from './output';
import type { Filter } from './spec';

/** A chain of one filter that changes every record as `apply` says (no applyRaw: the decoding path, then a re-pack). */
function chainApplying(apply: Filter['apply']): FilterChain {
  return new FilterChain([{ test: () => true, filter: { changes: true, apply }, counts: { dropped: 0, failed: 0 } }]);
}

test("a filter's own error while its record is packed again fails the run; it is not taken for an unreadable record", () => {
  const entries = Buffer.concat([encodeEntry(TIME, { a: 1 }), encodeEntry(TIME, { a: 2 })]);
  // a getter with a bug throws a TypeError, as msgpackr's refusal of a record does
  const buggy = chainApplying(() => ({
    get a(): unknown {
      return (null as unknown as { a: unknown }).a;
    },
  }));
  expect(() => buggy.run('app.web', entries)).toThrow(TypeError);
  expect(buggy.totals().unreadable).toBe(0);
  // a value msgpackr cannot hold (a bigint past 64 bits): the filter's fault as well
  const tooBig = chainApplying(() => ({ n: 2n ** 64n }));
  expect(() => tooBig.run('app.web', entries)).toThrow(/too large to fit/);
  expect(tooBig.totals().unreadable).toBe(0);
});

test('a record a filter nests past the stack passes on as it came, counted unreadable; the batch goes on', () => {
  const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
  const records = [{ log: '{"n":1}' }, { log: deep }, { log: '{"n":3}' }];
  const chain = chainOf([{ type: 'parser', key_name: 'log', format: 'json' }]);
  const out = chain.run('app.web', Buffer.concat(records.map((r) => encodeEntry(TIME, r))));
  expect(decodeEntries(out?.entries ?? Buffer.alloc(0)).map((e) => e.record)).toEqual([{ n: 1 }, { log: deep }, { n: 3 }]);
  expect(out?.indexes).toEqual([0, 1, 2]);
  expect(chain.totals().unreadable).toBe(1);
});

const packr = new Packr({ useRecords: false });

/** The entry `[TIME, {msg: 'b', ctx: <value>}]`, its value's msgpack bytes as given (encodeEntry refuses what these tests need). */
function entryWithCtx(value: Buffer): Buffer {
  const head = encodeEntry(TIME, {});
  return Buffer.concat([
    head.subarray(0, head.length - 1),
    Buffer.from([0x82]),
    packr.pack('msg'),
    packr.pack('b'),
    packr.pack('ctx'),
    value,
  ]);
}

test.each([
  [
    'msgpackr refuses (keys constructor and toJSON that is no function)',
    packr.pack(
      new Map<string, unknown>([
        ['constructor', 1],
        ['toJSON', 2],
      ]),
    ),
  ],
  // {a: {a: … {}}} 3000 maps deep: msgpackr decodes it, but packing it again overflows the stack
  ['nests past the stack once decoded', Buffer.concat([Buffer.alloc(3000 * 3, Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x80])])],
])(
  'a record filter renaming a key whose value %s passes the event on as it came, counted unreadable; the batch goes on',
  (_what, value) => {
    // top-level keys only: the record's bytes path (RawRecord), which packs the moved pair alone
    const chain = chainOf([{ type: 'record', rename: { ctx: 'context' } }]);
    const poison = entryWithCtx(value);
    const entries = Buffer.concat([
      encodeEntry(TIME, { msg: 'a', ctx: { ok: 1 } }),
      poison,
      encodeEntry(TIME, { msg: 'c', ctx: { ok: 3 } }),
    ]);
    const expected = Buffer.concat([
      encodeEntry(TIME, { msg: 'a', context: { ok: 1 } }),
      poison, // as it came, and nothing of the change that could not be written before it
      encodeEntry(TIME, { msg: 'c', context: { ok: 3 } }),
    ]);
    const out = chain.run('app.web', entries);
    expect(out?.entries).toEqual(expected);
    expect(out?.indexes).toEqual([0, 1, 2]);
    expect(chain.totals().unreadable).toBe(1);
    // into a staged Output, as the forwarder filters a hand-off
    const staged = chain.run('app.web', entries, 0, entries.length, Output.over(Buffer.alloc(64 * 1024)));
    expect(staged?.entries).toEqual(expected);
    expect(chain.totals().unreadable).toBe(2);
  },
);
