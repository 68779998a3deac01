import { encodeEntry } from '@tributary/forward-protocol';
import { TIME, chainOf } from './__fixtures__/run';
import { filterChunks } from './chunks';
import { Output, OutputPool } from './output';

const records = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    level: ['info', 'debug', 'warn'][(from + i) % 3],
    msg: `m${from + i} ${'p'.repeat((from + i) % 50)}`,
    n: from + i,
  }));
const entriesOf = (rs: Record<string, unknown>[]) => Buffer.concat(rs.map((r) => encodeEntry(TIME, r)));

// Filter sets whose outputs grow, shrink, reorder pairs and drop events: a staged Output must write what a fresh one writes.
const filterSets: unknown[][] = [
  [{ type: 'grep', exclude: [{ key: 'level', pattern: '^debug$' }] }],
  [{ type: 'grep', regexp: [{ key: 'level', pattern: '.' }] }],
  [
    { type: 'grep', exclude: [{ key: 'level', pattern: '^debug$' }] },
    { type: 'record', set: { env: 'production' } },
  ],
  [{ type: 'record', keep: ['n', 'level'], rename: { msg: 'message' } }],
  [{ type: 'record', set: { long: 'x'.repeat(2000), tag: '${tag}' } }],
  [{ type: 'record', set: { level: 'set' }, remove: ['msg'] }],
];

test.each(filterSets.map((f, i) => [i, f]))(
  'filter set %i: chunks filtered into one pooled Output (staged, reused) are the bytes of chunks filtered alone',
  (_, filters) => {
    const chain = chainOf(filters as unknown[]);
    const pool = new OutputPool(1 << 20);
    const chunks = [records(200), records(1), records(57, 200), records(300, 257)].map((rs, i) => ({
      tag: i === 1 ? 'one' : 'app.web',
      entries: entriesOf(rs),
      count: rs.length,
    }));
    const alone = filterChunks(chain, chunks).map((c) => Buffer.from(c.entries));
    for (let round = 0; round < 3; round++) {
      const out = pool.acquire(round === 2 ? 16 : chunks.reduce((n, c) => n + c.entries.length, 0));
      const staged = filterChunks(chain, chunks, out);
      expect(staged.map((c, i) => c.entries.equals(alone[i]))).toEqual(alone.map(() => true));
      expect(staged.map((c) => c.count)).toEqual(chunks.map((c, i) => filterChunks(chain, [chunks[i]])[0]?.count ?? c.count));
      pool.release(out);
    }
  },
);

test('a staged Output never writes over staged bytes still to be read, and falls back to the source when it would', () => {
  const src = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  const out = Output.over(Buffer.alloc(160));
  out.begin();
  out.stage(src, 0, 100);
  out.readFrom(0);
  out.copy(src, 0, 50); // room: the staged bytes start at 60
  out.bytes(Buffer.alloc(30, 0xff)); // would reach staged byte 20 while 0… may still be read: staging ends
  out.readFrom(50);
  out.copy(src, 50, 100);
  expect(out.view()).toEqual(Buffer.concat([src.subarray(0, 50), Buffer.alloc(30, 0xff), src.subarray(50)]));
});

test('a chunk the filters empty goes on empty when it carries a chunk id or a run of ids (the buffer remembers them), and is left out otherwise', () => {
  const chain = chainOf([{ type: 'grep', regexp: [{ key: 'level', pattern: '^never$' }] }]);
  const entries = entriesOf(records(10));
  const ids = { chunkIds: ['a', 'b'], sizes: [1, 2], acks: Buffer.alloc(0) };
  const out = filterChunks(chain, [
    { tag: 'app', entries, count: 10 },
    { tag: 'app', entries, count: 10, chunkId: 'c1' },
    { tag: 'app', entries, count: 10, ids },
  ]);
  expect(out.map((c) => [c.entries.length, c.count, c.chunkId, c.ids])).toEqual([
    [0, 0, 'c1', undefined],
    [0, 0, undefined, ids],
  ]);
});
