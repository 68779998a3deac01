import { decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { TIME, chainOf, run, validFilters } from '../__fixtures__/run';

test("Fluentd record_transformer's example: hostname and tag added", () => {
  const out = run([{ type: 'record', set: { hostname: '${hostname}', tag: '${tag}' } }], [{ message: 'hello world!' }], 'foo.bar');
  expect(out?.records).toEqual([{ message: 'hello world!', hostname: 'web001', tag: 'foo.bar' }]);
});

test.each([
  ['${tag_parts[0]}', 'foo'],
  ['${tag_parts[-1]}', 'baz'],
  ['${tag_parts[9]}', ''],
  ['${time}', '2023-11-14T22:13:20.123000000Z'],
  ['${record["message"]} on ${hostname}', 'hi on web001'],
  ['${env.STAGE}-x', 'prod-x'],
])('placeholder %s is %j', (template, value) => {
  const out = run([{ type: 'record', set: { out: template } }], [{ message: 'hi' }], 'foo.bar.baz', { STAGE: 'prod' });
  expect(out?.records[0].out).toBe(value);
});

test('keep, rename, set into a nested key, remove, in that order', () => {
  const out = run(
    [{ type: 'record', keep: ['a', 'b', 'c'], rename: { a: '$.x.y' }, set: { '$.x.z': '1' }, remove: ['c', 'gone'] }],
    [{ a: 'A', b: 'B', c: 'C', d: 'D' }],
  );
  expect(out?.records).toEqual([{ b: 'B', x: { y: 'A', z: '1' } }]);
});

// Fluent Bit's nest documentation, "Example usage for nest" and "for lift" (docs.fluentbit.io/manual/pipeline/filters/nest).
test.each([
  [
    { nest: { keys: ['Key*'], under: 'NestKey' } },
    { Key1: 'Value1', Key2: 'Value2', OtherKey: 'Value3' },
    { OtherKey: 'Value3', NestKey: { Key1: 'Value1', Key2: 'Value2' } },
  ],
  [
    { lift: { from: 'NestKey' } },
    { OtherKey: 'Value3', NestKey: { Key1: 'Value1', Key2: 'Value2' } },
    { OtherKey: 'Value3', Key1: 'Value1', Key2: 'Value2' },
  ],
])('Fluent Bit nest docs: %j', (options, input, output) => {
  expect(run([{ type: 'record', ...options }], [input])?.records).toEqual([output]);
});

// Fluent Bit's nest filter documentation examples (docs.fluentbit.io, filters/nest).
test('Fluent Bit nest example: Mem.* nested under Memstats with the prefix removed', () => {
  const record = {
    'Mem.total': 1016024,
    'Mem.used': 716672,
    'Mem.free': 299352,
    'Swap.total': 2064380,
    'Swap.used': 1244,
    'Swap.free': 2063136,
  };
  const out = run([{ type: 'record', nest: { keys: ['Mem.*'], under: 'Memstats', remove_prefix: 'Mem.' } }], [record]);
  expect(out?.records).toEqual([
    { 'Swap.total': 2064380, 'Swap.used': 1244, 'Swap.free': 2063136, Memstats: { total: 1016024, used: 716672, free: 299352 } },
  ]);
});

test('Fluent Bit nest example: lift with a prefix added', () => {
  const out = run([{ type: 'record', lift: { from: 'Stats', add_prefix: 'Lifted_' } }], [{ Stats: { Mem: 1, Swap: 2 }, other: 'x' }]);
  expect(out?.records).toEqual([{ other: 'x', Lifted_Mem: 1, Lifted_Swap: 2 }]);
});

test('the same input gives the same bytes (replay)', () => {
  const f = [{ type: 'record', set: { t: '${time}', h: '${hostname}' }, remove: ['x'] }];
  const a = run(f, [{ x: 1, y: [1, 'b', { c: null }] }]);
  const b = run(f, [{ x: 1, y: [1, 'b', { c: null }] }]);
  expect(a?.bytes.equals(b?.bytes as Buffer)).toBe(true);
});

test('check: an unknown placeholder or an unset variable names the filter and key', () => {
  expect(() => validFilters([{ type: 'record', set: { a: '${nope}' } }])).toThrow(/filters\[0\]\.set\.a: unknown placeholder \$\{nope\}/);
  expect(() => validFilters([{ type: 'record', set: { a: '${env.MISSING_X}' } }])).toThrow(
    /filters\[0\]\.set\.a: the environment variable MISSING_X is not set/,
  );
});

test('entries in shared memory (as egress hands them) are decoded too', () => {
  const entries = encodeEntry(TIME, { a: 'x'.repeat(100), b: { c: 'y'.repeat(100) } });
  const shared = Buffer.from(new SharedArrayBuffer(entries.length + 8), 4, entries.length);
  entries.copy(shared);
  const out = chainOf([{ type: 'record', remove: ['a'] }]).run('t', Buffer.from(shared.buffer), 4, 4 + entries.length);
  expect(decodeEntries(out?.entries as Buffer).map((e) => e.record)).toEqual([{ b: { c: 'y'.repeat(100) } }]);
});

test.each([
  [{ set: { a: 'x', t: '${tag}-${record["n"]}' }, remove: ['gone'] }],
  [{ keep: ['n', 'gone', 's'], rename: { s: 'S' }, set: { n: 'over' } }],
  [{ rename: { n: 'm', missing: 'z' }, remove: ['s'] }],
])('the record changed as bytes equals the record decoded, changed and packed: %j', (config) => {
  const records = [
    { n: 1, s: 'a', gone: [1, { x: 2 }] },
    { s: 'b', nested: { deep: 'y' }, big: 2n ** 60n },
  ];
  const asBytes = run([{ type: 'record', ...config }], records);
  // a mask that matches nothing takes the decoding path
  const decoded = run(
    [
      { type: 'record', ...config },
      { type: 'mask', builtin: [], patterns: ['^never$'] },
    ],
    records,
  );
  expect(asBytes?.records).toEqual(decoded?.records);
  expect(asBytes?.bytes.equals(decoded?.bytes as Buffer)).toBe(true);
});
