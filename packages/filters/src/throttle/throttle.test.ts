import { EventTime, encodeEntry } from '@tributary/forward-protocol';
import { chainOf, validFilters } from '../__fixtures__/run';
import { checkEgressFilters } from '../registry';

const at = (ms: number, record: Record<string, unknown>) => encodeEntry(new EventTime(Math.floor(ms / 1000), (ms % 1000) * 1e6), record);

test('at most limit events per window of event time, per tag; drops counted', () => {
  const chain = chainOf([{ type: 'throttle', limit: 2, window_ms: 1000 }]);
  // 5 events in second 0, 1 in second 1, 3 in second 2
  const times = [0, 100, 200, 300, 999, 1000, 2000, 2001, 2999];
  const out = chain.run('a', Buffer.concat(times.map((t, i) => at(1_700_000_000_000 + t, { i }))));
  expect(out?.indexes).toEqual([0, 1, 5, 6, 7]);
  expect(chain.counts[0].dropped).toBe(4);
  // another tag has its own budget
  expect(chain.run('b', Buffer.concat([0, 1, 2].map((i) => at(1_700_000_000_000, { i }))))?.indexes).toEqual([0, 1]);
});

test('per key values', () => {
  const chain = chainOf([{ type: 'throttle', limit: 1, group_keys: ['$.k.user'] }]);
  const users = ['a', 'b', 'a', 'c', 'b', 'a'];
  const out = chain.run('t', Buffer.concat(users.map((u) => at(1_700_000_000_000, { k: { user: u } }))));
  expect(out?.indexes).toEqual([0, 1, 3]);
  expect(chain.counts[0].dropped).toBe(3);
});

test('max_groups bounds the state: the oldest group is forgotten', () => {
  const chain = chainOf([{ type: 'throttle', limit: 1, group_keys: ['u'], max_groups: 2 }]);
  const out = chain.run('t', Buffer.concat(['a', 'b', 'c', 'a'].map((u) => at(1_700_000_000_000, { u }))));
  expect(out?.indexes).toEqual([0, 1, 2, 3]); // "a" was forgotten when "c" came
});

test('the aggregator refuses it (not deterministic at egress)', () => {
  expect(checkEgressFilters(validFilters([{ type: 'grep' }, { type: 'throttle', limit: 1 }]))).toEqual([
    expect.stringMatching(/^filters\[1\]\.type: throttle is not deterministic/),
  ]);
});
