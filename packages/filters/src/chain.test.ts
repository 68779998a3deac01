import { decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { TIME, chainOf } from './__fixtures__/run';
import { FilterChain } from './chain';
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
