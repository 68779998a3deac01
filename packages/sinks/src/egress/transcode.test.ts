import { gunzipSync } from 'node:zlib';
import { EventTime, decodeEntries, encodeEntry } from '@tributary/forward-protocol';
import { Packr } from 'msgpackr';
import { type EncodeJob, runEncodeJob } from './encode-job';
import { DEFAULT_FIELDS, type FieldNames } from './transcode';

const packr = new Packr({ useRecords: false });

function job(entries: Buffer, over: Partial<EncodeJob> = {}, idPrefix = 'k1', tag = 'app.web'): EncodeJob {
  return {
    entries,
    records: [{ tag, idPrefix, partition: 0, start: 0, end: entries.length }],
    fields: DEFAULT_FIELDS,
    gzipLevels: [1],
    ndjson: true,
    ...over,
  };
}

/** Every line a job wrote, from its gzip output, in order of groups. */
function gzLines(entries: Buffer, over: Partial<EncodeJob> = {}): string[] {
  const r = runEncodeJob(job(entries, over));
  return r.groups.flatMap((g) => gunzipSync(Buffer.concat(g.gzip[0])).toString('utf8').split('\n').filter(Boolean));
}

/** What egress wrote before the byte-level transcoder: decode to objects, add the fields, JSON.stringify. */
function reference(entries: Buffer, idPrefix: string, tag: string, fields: FieldNames = DEFAULT_FIELDS): string[] {
  return decodeEntries(entries).map((e, i) =>
    JSON.stringify({ ...e.record, [fields.id]: `${idPrefix}#${i}`, [fields.time]: e.time.toRfc3339(), [fields.tag]: tag }),
  );
}

function raw(time: Buffer, record: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x92]), time, record]);
}

const T = new EventTime(1700000000, 5);
const intTime = (n: number) => packr.pack(n);

test('ordinary records come out exactly as JSON.stringify of the decoded record wrote them', () => {
  const records = [
    { msg: 'GET /a "quoted" \\ back\nslash\ttab\u0001ctl', n: 1, neg: -5, big: 4294967296, f: 12.5, tiny: 1e-7, t: true, nil: null },
    { nested: { a: [1, 'x', null, false, { b: [] }], 'é ✓ 😀': 'ünïcode ✓ 😀' }, empty: {}, arr: [] },
    {},
    { int8: -100, int16: -30000, int32: -2000000000, u16: 60000, u32: 4000000000, f32: Math.fround(0.1), neg0: -0 },
    { long: 'x'.repeat(70_000) },
  ];
  const entries = Buffer.concat(records.map((r, i) => encodeEntry(new EventTime(1700000000 + i * 7200, i * 111_111), r)));
  const lines = gzLines(entries);
  expect(lines.sort()).toEqual(reference(entries, 'k1', 'app.web').sort());
});

test('times: int, float, EventTime and [EventTime, metadata] forms; float nanoseconds carry into the seconds', () => {
  const meta = Buffer.concat([Buffer.from([0x92]), encodeEntry(T, {}).subarray(1, 11), packr.pack({ m: 1 })]);
  const entries = Buffer.concat([
    raw(intTime(1700000000), packr.pack({ a: 1 })),
    raw(Buffer.from([0xcb, ...new Uint8Array(new Float64Array([6 - 1e-10]).buffer).reverse()]), packr.pack({ a: 2 })),
    raw(meta, packr.pack({ a: 3 })),
  ]);
  const times = gzLines(entries)
    .map((l) => JSON.parse(l))
    .sort((x, y) => x.a - y.a)
    .map((l) => l._time);
  expect(times).toEqual(['2023-11-14T22:13:20.000000000Z', '1970-01-01T00:00:06.000000000Z', '2023-11-14T22:13:20.000000005Z']);
});

describe('every msgpack value has a JSON form (no poison pill)', () => {
  const entry = (record: Buffer, time = encodeEntry(T, {}).subarray(1, 11)) => raw(time, record);
  const one = (record: Buffer, time?: Buffer) => JSON.parse(gzLines(entry(record, time))[0]);

  test.each([5, 0x42, 0x70])('ext type %i becomes {"$ext": type, "data": base64}', (type) => {
    const rec = Buffer.concat([Buffer.from([0x81, 0xa1, 0x78, 0xd6, type]), Buffer.from('abcd')]);
    expect(one(rec).x).toEqual({ $ext: type, data: Buffer.from('abcd').toString('base64') });
  });

  test('non-string map keys are stringified, also nested', () => {
    // {1: "a", nil: "b", true: "c", [1]: "d", "m": {2.5: "e"}}
    const rec = Buffer.from([
      0x85,
      0x01,
      0xa1,
      0x61,
      0xc0,
      0xa1,
      0x62,
      0xc3,
      0xa1,
      0x63,
      0x91,
      0x01,
      0xa1,
      0x64,
      0xa1,
      0x6d,
      0x81,
      0xcb,
      ...new Uint8Array(new Float64Array([2.5]).buffer).reverse(),
      0xa1,
      0x65,
    ]);
    expect(one(rec)).toMatchObject({ '1': 'a', null: 'b', true: 'c', '[1]': 'd', m: { '2.5': 'e' } });
  });

  test('binary becomes base64, uint64 beyond 2^53 stays exact, the msgpack timestamp becomes RFC 3339', () => {
    const rec = packr.pack({ bin: Buffer.from([0, 1, 2, 255]) });
    expect(one(rec).bin).toBe('AAEC/w==');
    const u64 = Buffer.from([0x81, 0xa1, 0x75, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(gzLines(entry(u64))[0]).toContain('"u":18446744073709551615,');
    const ts = Buffer.from([0x81, 0xa1, 0x74, 0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00]);
    expect(one(ts).t).toBe('2023-11-14T22:13:20.000000000Z');
  });

  test('invalid UTF-8 becomes U+FFFD; NaN and Infinity values become null', () => {
    const rec = Buffer.concat([
      Buffer.from([0x83, 0xa1, 0x73, 0xa3, 0x61, 0xff, 0x62, 0xa1, 0x6e, 0xcb]),
      Buffer.from(new Uint8Array(new Float64Array([Number.NaN]).buffer).reverse()),
      Buffer.from([0xa1, 0x69, 0xcb]),
      Buffer.from(new Uint8Array(new Float64Array([Number.POSITIVE_INFINITY]).buffer).reverse()),
    ]);
    expect(one(rec)).toMatchObject({ s: 'a\ufffdb', n: null, i: null });
  });

  test.each([
    ['2^53', packr.pack(2 ** 53), '9007199254740992'],
    ['10^13', packr.pack(1e13), '10000000000000'],
    ['NaN', Buffer.from([0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), 'NaN'],
    ['+Inf', Buffer.from([0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]), 'Infinity'],
    ['-Inf', Buffer.from([0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0]), '-Infinity'],
    ['-1', packr.pack(-1), '-1'],
    ['EventTime with 2e9 ns', Buffer.from([0xd7, 0, 0x65, 0x53, 0xf1, 0, 0x77, 0x35, 0x94, 0]), '1700000000.2000000000'],
  ])('an event time of %s is kept raw in _time and filed under dt=1970-01-01/hour=00', (_name, time, rawText) => {
    const r = runEncodeJob(job(entry(packr.pack({ a: 1 }), time)));
    expect(r.groups).toHaveLength(1);
    expect(r.groups[0].hour).toBe(-1);
    expect(JSON.parse(gunzipSync(Buffer.from(r.groups[0].gzip[0][0])).toString())._time).toBe(rawText);
  });

  test('a record nested 100,000 deep is dead-lettered; the events before and after it are written', () => {
    const deep = Buffer.concat([Buffer.from([0x81, 0xa1, 0x64]), Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]);
    const entries = Buffer.concat([entry(packr.pack({ n: 1 })), entry(deep), entry(packr.pack({ n: 3 }))]);
    const r = runEncodeJob(job(entries));
    const lines = gunzipSync(Buffer.concat(r.groups[0].gzip[0]))
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.n, l._id])).toEqual([
      [1, 'k1#0'],
      [3, 'k1#2'],
    ]);
    expect(r.deadLetters).toHaveLength(1);
    expect(r.deadLetters[0]).toMatchObject({ id: 'k1#1', tag: 'app.web' });
    expect(r.deadLetters[0].reason).toMatch(/nesting deeper than 512/);
    expect(Buffer.from(r.deadLetters[0].raw, 'base64').equals(entry(deep))).toBe(true);
  });

  test('bytes that are not msgpack are dead-lettered with the rest of their chunk; the next chunk is written', () => {
    const good = entry(packr.pack({ n: 1 }));
    const bad = Buffer.from([0x92, 0x01, 0x81, 0xa1, 0x61, 0xc1]);
    const entries = Buffer.concat([good, bad, good]);
    const r = runEncodeJob({
      ...job(entries),
      records: [
        { tag: 'a', idPrefix: 'c1', partition: 0, start: 0, end: good.length + bad.length },
        { tag: 'a', idPrefix: 'c2', partition: 0, start: good.length + bad.length, end: entries.length },
      ],
    });
    expect(r.events).toBe(2);
    expect(r.deadLetters.map((d) => d.id)).toEqual(['c1#1']);
  });

  test('a tag with a NUL and a tag of 300 bytes are written escaped', () => {
    const entries = entry(packr.pack({ n: 1 }));
    const r = runEncodeJob(job(entries, {}, 'k', 'a\u0000b'));
    expect(JSON.parse(Buffer.from(r.groups[0].ndjson[0]).toString())._tag).toBe('a\u0000b');
    const long = 't'.repeat(300);
    const r2 = runEncodeJob(job(entries, {}, 'k', long));
    expect(JSON.parse(Buffer.from(r2.groups[0].ndjson[0]).toString())._tag).toBe(long);
  });

  test('one chunk of 1,000,000 [1,{}] events is written in gzip members of about 1 MiB, never as one string', () => {
    const e = Buffer.from([0x92, 0x01, 0x80]);
    const entries = Buffer.alloc(e.length * 1_000_000);
    for (let i = 0; i < 1_000_000; i++) e.copy(entries, i * e.length);
    const r = runEncodeJob(job(entries, { ndjson: false }));
    expect(r.events).toBe(1_000_000);
    const members = r.groups[0].gzip[0];
    expect(members.length).toBeGreaterThan(40);
    const first = gunzipSync(Buffer.from(members[0])).toString().split('\n')[0];
    expect(JSON.parse(first)).toEqual({ _id: 'k1#0', _time: '1970-01-01T00:00:01.000000000Z', _tag: 'app.web' });
    const total = members.reduce((n, m) => n + gunzipSync(Buffer.from(m)).toString().split('\n').length - 1, 0);
    expect(total).toBe(1_000_000);
  });
});

test("a record's own _id, _time or _tag wins; the added field is left out", () => {
  const entries = encodeEntry(T, { _id: 'mine', msg: 'x', _tag: 'own-tag' });
  const line = gzLines(entries)[0];
  expect(line).toBe('{"_id":"mine","msg":"x","_tag":"own-tag","_time":"2023-11-14T22:13:20.000000005Z"}');
  const renamed = gzLines(entries, { fields: { id: 'event_id', time: 'ts', tag: 'tag', metadata: '' } })[0];
  expect(JSON.parse(renamed)).toEqual({
    _id: 'mine',
    msg: 'x',
    _tag: 'own-tag',
    event_id: 'k1#0',
    ts: '2023-11-14T22:13:20.000000005Z',
    tag: 'app.web',
  });
});

test('events of one chunk spread over hours go to one group per hour, lines in order', () => {
  const entries = Buffer.concat([0, 3600, 10, 7300].map((d, i) => encodeEntry(new EventTime(1700000000 + d, 0), { i })));
  const r = runEncodeJob(job(entries));
  const byHour = new Map(
    r.groups.map((g) => [
      g.hour,
      Buffer.from(g.ndjson[0])
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).i),
    ]),
  );
  expect([...byHour]).toEqual([
    [472222, [0, 2]],
    [472223, [1]],
    [472224, [3]],
  ]);
  const g = r.groups[0];
  const ends: number[] = [];
  let at = 0;
  for (const l of Buffer.from(g.ndjson[0]).toString().split('\n').filter(Boolean)) {
    at += Buffer.byteLength(l) + 1;
    ends.push(at);
  }
  expect([...g.lineEnds[0]]).toEqual(ends);
});

describe("Fluent Bit's entries: array32 headers and [[time, metadata], record]", () => {
  // [[EventTime, {"meta": "m1"}], {"msg": "hello 1"}] with array32 headers, as Fluent Bit 4.2.8 writes it
  const metaEntry = (meta: Buffer, record: Record<string, unknown> = { msg: 'hello 1' }) =>
    Buffer.concat([Buffer.from([0xdd, 0, 0, 0, 2, 0xdd, 0, 0, 0, 2]), encodeEntry(T, {}).subarray(1, 11), meta, packr.pack(record)]);

  test('metadata goes under _metadata after the added fields; an empty map adds nothing', () => {
    const lines = gzLines(Buffer.concat([metaEntry(packr.pack({ meta: 'm1' })), metaEntry(Buffer.from([0x80]))]));
    expect(lines).toEqual([
      '{"msg":"hello 1","_id":"k1#0","_time":"2023-11-14T22:13:20.000000005Z","_tag":"app.web","_metadata":{"meta":"m1"}}',
      '{"msg":"hello 1","_id":"k1#1","_time":"2023-11-14T22:13:20.000000005Z","_tag":"app.web"}',
    ]);
  });

  test('the metadata field can be renamed or dropped, and a record that has the key keeps its own', () => {
    const entry = metaEntry(packr.pack({ meta: 'm1' }));
    const renamed = JSON.parse(gzLines(entry, { fields: { ...DEFAULT_FIELDS, metadata: 'fluentbit' } })[0]);
    expect(renamed.fluentbit).toEqual({ meta: 'm1' });
    expect(renamed._metadata).toBeUndefined();
    const dropped = JSON.parse(gzLines(entry, { fields: { ...DEFAULT_FIELDS, metadata: '' } })[0]);
    expect(Object.keys(dropped)).toEqual(['msg', '_id', '_time', '_tag']);
    const own = JSON.parse(gzLines(metaEntry(packr.pack({ meta: 'm1' }), { _metadata: 'mine' }))[0]);
    expect(own._metadata).toBe('mine');
  });

  test('metadata that is not a map is written as its JSON value, never a dead letter', () => {
    const r = runEncodeJob(job(metaEntry(packr.pack('just text'))));
    expect(r.deadLetters).toEqual([]);
    expect(JSON.parse(gunzipSync(Buffer.concat(r.groups[0].gzip[0])).toString())._metadata).toBe('just text');
  });

  test('array16 entries, map32 records and ext8 EventTime are records too', () => {
    const record = Buffer.concat([Buffer.from([0xdf, 0, 0, 0, 1, 0xd9, 1, 0x61, 0xd1, 0xff, 0xfe])]); // {"a": -2} as map32, str8, int16
    const time = Buffer.concat([Buffer.from([0xc7, 8, 0]), encodeEntry(T, {}).subarray(3, 11)]);
    const entry = Buffer.concat([Buffer.from([0xdc, 0, 2]), time, record]);
    expect(gzLines(entry)).toEqual(['{"a":-2,"_id":"k1#0","_time":"2023-11-14T22:13:20.000000005Z","_tag":"app.web"}']);
  });

  test('a dead letter says its kind: shape for a 3-element entry, malformed for bytes cut short', () => {
    const three = Buffer.from([0x93, 0x01, 0x80, 0x80]);
    const cut = Buffer.concat([Buffer.from([0xdd, 0, 0, 0, 2]), encodeEntry(T, {}).subarray(1, 11), Buffer.from([0x81, 0xa3, 0x61])]);
    expect(runEncodeJob(job(three)).deadLetters.map((d) => d.kind)).toEqual(['shape']);
    expect(runEncodeJob(job(cut)).deadLetters.map((d) => d.kind)).toEqual(['malformed']);
  });
});
