import { encodeEntry } from '@tributary/forward-protocol';
import { TIME, chainOf, run, validFilters } from '../__fixtures__/run';

// Fluentd's filter_grep documentation example (docs.fluentd.org/filter/grep).
const fluentdExample = {
  type: 'grep',
  regexp: [
    { key: 'message', pattern: 'cool' },
    { key: 'hostname', pattern: '^web\\d+\\.example\\.com$' },
  ],
  exclude: [{ key: 'message', pattern: 'uncool' }],
};

test.each([
  [{ message: "It's cool outside today", hostname: 'web001.example.com' }, true],
  [{ message: "That's not cool", hostname: 'web1337.example.com' }, true],
  [{ message: 'I am cool but you are uncool', hostname: 'db001.example.com' }, false],
  [{ hostname: 'web001.example.com' }, false],
  [{ message: "It's cool outside today" }, false],
])('Fluentd grep example: %j kept %s', (record, kept) => {
  const out = run([fluentdExample], [record]);
  expect(out?.records).toEqual(kept ? [record] : []);
  expect(out?.counts[0].dropped).toBe(kept ? 0 : 1);
});

test('and/or blocks as Fluentd flattens them; nested keys with $.a.b', () => {
  const records = [
    { k: { ns: 'prod' }, level: 'error' },
    { k: { ns: 'prod' }, level: 'debug' },
    { k: { ns: 'kube-system' }, level: 'error' },
    { k: { ns: 'dev' }, level: 'warn' },
  ];
  // or-regexps: one must match; and-excludes: drop only when all match
  const out = run(
    [
      {
        type: 'grep',
        or: [
          {
            regexp: [
              { key: 'level', pattern: '^error$' },
              { key: 'level', pattern: '^warn$' },
            ],
          },
        ],
        and: [
          {
            exclude: [
              { key: '$.k.ns', pattern: '^kube-' },
              { key: 'level', pattern: 'error' },
            ],
          },
        ],
      },
    ],
    records,
  );
  expect(out?.records).toEqual([records[0], records[3]]);
  expect(out?.indexes).toEqual([0, 3]); // dropped events leave gaps
});

test('grep copies kept events byte for byte and decodes only the keys it reads', () => {
  const record = { message: 'cool', big: 2n ** 60n, nested: { deep: [1, 2, 3] } };
  const out = run([{ type: 'grep', regexp: [{ key: 'message', pattern: 'cool' }] }], [record]);
  expect(out?.bytes.equals(encodeEntry(TIME, record))).toBe(true);
});

test('a tag no filter matches is not touched', () => {
  expect(run([{ ...fluentdExample, match: 'other.**' }], [{ message: 'x' }])).toBeNull();
});

test('check names the filter and key of a bad or unsafe regex, and a block with both kinds', () => {
  expect(() => validFilters([{ type: 'grep', regexp: [{ key: 'a', pattern: '(' }] }])).toThrow(
    /filters\[0\]\.regexp\[0\]\.pattern: the regex "\(" does not compile/,
  );
  expect(() => validFilters([{ type: 'record' }, { type: 'grep', exclude: [{ key: 'a', pattern: '(a+)+$' }] }])).toThrow(
    /filters\[1\]\.exclude\[0\]\.pattern: the regex "\(a\+\)\+\$" is prone to catastrophic backtracking/,
  );
  expect(() =>
    validFilters([{ type: 'grep', and: [{ regexp: [{ key: 'a', pattern: 'x' }], exclude: [{ key: 'a', pattern: 'y' }] }] }]),
  ).toThrow(/filters\[0\]\.and\[0\]: holds both regexp and exclude rules/);
  expect(() => validFilters([{ type: 'grep', regexp: [{ key: '$.a[x]', pattern: 'x' }] }])).toThrow(
    /filters\[0\]\.regexp\[0\]\.key: "\$\.a\[x\]" has a malformed/,
  );
  expect(() => validFilters([{ type: 'grep', regex: [] }])).toThrow(/filters\/0|filters\[0\]/);
});

test('kept events are copied in runs between drops, and not at all when none is dropped', () => {
  const records = Array.from({ length: 6 }, (_, n) => ({ n, level: n === 2 || n === 3 ? 'debug' : 'info' }));
  const entries = Buffer.concat(records.map((r) => encodeEntry(TIME, r)));
  const chain = chainOf([{ type: 'grep', exclude: [{ key: 'level', pattern: 'debug' }] }]);
  const some = chain.run('t', entries);
  expect(some?.indexes).toEqual([0, 1, 4, 5]);
  expect(some?.entries.equals(Buffer.concat([0, 1, 4, 5].map((n) => encodeEntry(TIME, records[n]))))).toBe(true);
  const all = chain.run('t', Buffer.concat([records[0], records[1]].map((r) => encodeEntry(TIME, r))));
  const none = chain.run('t', Buffer.concat([records[2], records[3]].map((r) => encodeEntry(TIME, r))));
  expect(all?.indexes).toEqual([0, 1]);
  expect(none).toEqual({ entries: Buffer.alloc(0), indexes: [] });
  const whole = chain.run('t', entries.subarray(0, encodeEntry(TIME, records[0]).length));
  expect(whole?.entries.buffer).toBe(entries.buffer); // a view of the chunk's own bytes
});

test('values that repeat, change type, go missing, are set by an earlier filter or are long keep the result of their own test (raw and decoded paths)', () => {
  const long = 'x'.repeat(100);
  const levels: unknown[] = ['info', 'debug', 'info', 'info', undefined, 'debug', long, long, `${long}y`, 5, '5', 5, 'info'];
  const records = levels.map((level, i) => (level === undefined ? { i } : { level, i }));
  const grep = { type: 'grep', regexp: [{ key: 'level', pattern: '^(info|5|x+)$' }] };
  const expected = [0, 2, 3, 6, 7, 9, 10, 11, 12];
  expect(run([grep], records)?.indexes).toEqual(expected);
  // the same after a filter that needs decoded records (parser): the decoding path
  expect(run([{ type: 'parser', key_name: 'none', format: 'json', reserve_data: true }, grep], records)?.indexes).toEqual(expected);
  // a record filter before the grep sets the key on some events: those are read as set, the others as bytes
  const setDebug = { type: 'record', match: 'app.web', set: { level: 'info' } };
  expect(run([setDebug, grep], records)?.indexes).toEqual(levels.map((_, i) => i));
});
