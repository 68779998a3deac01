import { run, validFilters } from '../__fixtures__/run';

const apache =
  '^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] "(?<method>\\S+)(?: +(?<path>[^ ]*) +\\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)$';

// Fluentd filter_parser documentation examples (docs.fluentd.org/filter/parser); Fluentd also moves `time` into the
// event time, which Tributary leaves to the record.
test.each([
  [
    'regexp, record replaced',
    { format: 'regex', pattern: apache },
    { key: 'value', log: '192.168.0.1 - - [05/Feb/2018:12:00:00 +0900] "GET / HTTP/1.1" 200 777' },
    { host: '192.168.0.1', user: '-', time: '05/Feb/2018:12:00:00 +0900', method: 'GET', path: '/', code: '200', size: '777' },
  ],
  [
    'json, reserve_data',
    { format: 'json', reserve_data: true },
    { key: 'value', log: '{"user":1,"num":2}' },
    { key: 'value', log: '{"user":1,"num":2}', user: 1, num: 2 },
  ],
  [
    'json, reserve_data and remove_key_name_field',
    { format: 'json', reserve_data: true, remove_key_name_field: true },
    { key: 'value', log: '{"user":1,"num":2}' },
    { key: 'value', user: 1, num: 2 },
  ],
  [
    'json, hash_value_field',
    { format: 'json', hash_value_field: 'parsed' },
    { key: 'value', log: '{"user":1,"num":2}' },
    { parsed: { user: 1, num: 2 } },
  ],
  [
    'json, inject_key_prefix',
    { format: 'json', inject_key_prefix: 'data.' },
    { key: 'value', log: '{"user":1,"num":2}' },
    { 'data.user': 1, 'data.num': 2 },
  ],
  [
    'logfmt (quotes, escapes, bare keys)',
    { format: 'logfmt', reserve_data: true, remove_key_name_field: true },
    { log: 'level=info msg="hello \\"world\\"" dur=3ms ok', app: 'a' },
    { app: 'a', level: 'info', msg: 'hello "world"', dur: '3ms', ok: true },
  ],
])('%s', (_name, options, record, expected) => {
  const out = run([{ type: 'parser', key_name: 'log', ...options }], [record]);
  expect(out?.records).toEqual([expected]);
  expect(out?.counts[0].failed).toBe(0);
});

test.each([
  ['json', { format: 'json' }, 'not json'],
  ['json array', { format: 'json' }, '[1,2]'],
  ['regex', { format: 'regex', pattern: '^(?<a>\\d+)$' }, 'abc'],
  ['logfmt', { format: 'logfmt' }, 'a="open'],
])('a %s value that does not parse is kept unchanged and counted', (_name, options, log) => {
  const out = run([{ type: 'parser', key_name: 'log', ...options }], [{ log, n: 1 }, { n: 2 }]);
  expect(out?.records).toEqual([{ log, n: 1 }, { n: 2 }]);
  expect(out?.counts[0].failed).toBe(2);
});

test('a nested key_name', () => {
  const out = run(
    [{ type: 'parser', key_name: '$.k.log', format: 'json', reserve_data: true, remove_key_name_field: true }],
    [{ k: { log: '{"a":1}', o: 2 } }],
  );
  expect(out?.records).toEqual([{ k: { o: 2 }, a: 1 }]);
});

test('check: a regex without named groups, or unsafe, names the filter and key', () => {
  expect(() => validFilters([{ type: 'parser', key_name: 'log', format: 'regex', pattern: '^\\d+$' }])).toThrow(
    /filters\[0\]\.pattern: has no named group/,
  );
  expect(() => validFilters([{ type: 'parser', key_name: 'log', format: 'regex', pattern: '^(?<a>(x+)+)$' }])).toThrow(
    /filters\[0\]\.pattern: the regex .* is prone to catastrophic backtracking/,
  );
  expect(() => validFilters([{ type: 'parser', key_name: 'log', format: 'regex' }])).toThrow(
    /filters\[0\]\.pattern: format regex needs a pattern/,
  );
});
