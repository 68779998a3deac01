import { hashKey } from './acked-chunk-ids';
import { InProgressIds } from './in-progress-ids';

const hashes = (keys: string[]) => {
  const out = new Uint32Array(keys.length * 4);
  keys.forEach((k, i) => hashKey(k, out, i));
  return out;
};

test('a key belongs to the latest append that carries it, until that append lets it go', () => {
  const ids = new InProgressIds();
  const hs = hashes(['a', 'b']);
  ids.set(hs, 0, 1);
  ids.set(hs, 1, 1);
  ids.set(hs, 0, 2); // a resend of 'a' in a later append
  expect([ids.ownerOf(hs, 0), ids.ownerOf(hs, 1)]).toEqual([2, 1]);
  ids.delete(hs, 0, 1); // the earlier append settles: 'a' stays with the later one
  ids.delete(hs, 1, 1);
  expect([ids.ownerOf(hs, 0), ids.ownerOf(hs, 1), ids.size]).toEqual([2, 0, 1]);
  ids.delete(hs, 0, 2);
  expect([ids.ownerOf(hs, 0), ids.size]).toEqual([0, 0]);
});

test('many keys added and dropped in random order (table growth, colliding slots) agree with a Map', () => {
  const ids = new InProgressIds();
  const model = new Map<number, number>();
  const keys = hashes(Array.from({ length: 6000 }, (_, i) => `id-${i}`));
  // Only the low bits pick the slot: keys sharing them collide, and deletions must shift them back.
  let seed = 7;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let step = 0; step < 40_000; step++) {
    const k = rand(6000);
    const owner = 1 + rand(5);
    if (rand(3) === 0) {
      ids.delete(keys, k, owner);
      if (model.get(k) === owner) model.delete(k);
    } else {
      ids.set(keys, k, owner);
      model.set(k, owner);
    }
  }
  expect(ids.size).toBe(model.size);
  for (let k = 0; k < 6000; k++) expect(ids.ownerOf(keys, k)).toBe(model.get(k) ?? 0);
});
