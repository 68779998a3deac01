import { RecentKeys } from './recent-keys';

test('keeps the newest keys up to its capacity, oldest first', () => {
  const r = new RecentKeys(3, 60_000);
  r.add(['a', 'b'], 1000);
  expect(r.snapshot(1000)).toEqual(['a', 'b']);
  r.add(['c', 'd', 'e'], 1000);
  expect(r.snapshot(1000)).toEqual(['c', 'd', 'e']);
});

test('leaves out keys older than the age bound (a done mark would have expired)', () => {
  const r = new RecentKeys(10, 5000);
  r.add(['old'], 0);
  r.add(['new'], 4000);
  expect(r.snapshot(4000)).toEqual(['old', 'new']);
  expect(r.snapshot(6000)).toEqual(['new']);
});

test('a snapshot is a copy: keys added during a rebuild do not change it', () => {
  const r = new RecentKeys(2, 60_000);
  r.add(['a', 'b'], 0);
  const snap = r.snapshot(0);
  r.add(['c'], 0);
  expect(snap).toEqual(['a', 'b']);
});
