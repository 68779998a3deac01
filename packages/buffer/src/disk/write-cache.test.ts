import { WriteCache } from './write-cache';

const CHUNK_LIMIT = 16 * 1024;

test('what is kept is a copy: the memory a payload came in (a socket read, a pooled request buffer) may be reused at once', () => {
  const cache = new WriteCache(1024 * 1024, CHUNK_LIMIT);
  const read = Buffer.allocUnsafe(16 * 1024).fill(1);
  cache.remember('a', true, read.subarray(1000, 1000 + 4096));
  cache.remember('a', false, read.subarray(8000, 8000 + 2048));
  read.fill(2); // the next request reuses the buffer
  const kept = cache.get('a') ?? [];
  expect(Buffer.concat(kept).equals(Buffer.alloc(4096 + 2048, 1))).toBe(true);
  for (const part of kept) expect(part.buffer).not.toBe(read.buffer);
});

test("a forgotten chunk's slab is reused by the next chunk; one read more than once (a resend) is not", () => {
  const cache = new WriteCache(1024 * 1024, CHUNK_LIMIT);
  cache.remember('a', true, Buffer.alloc(4096, 1));
  const slabA = cache.get('a')?.[0].buffer;
  cache.forget('a');
  cache.remember('b', true, Buffer.alloc(4096, 2));
  const b = cache.get('b')?.[0];
  expect(b?.buffer).toBe(slabA);
  expect(b?.equals(Buffer.alloc(4096, 2))).toBe(true);
  cache.get('b'); // sent again after a failed connection, which may still hold the slab
  cache.forget('b');
  cache.remember('c', true, Buffer.alloc(4096, 3));
  expect(cache.get('c')?.[0].buffer).not.toBe(slabA);
});

test('the budget counts whole slabs of twice the chunk limit (a sealed chunk holds less); a chunk that outgrows its slab is read back instead', () => {
  const slab = 2 * CHUNK_LIMIT;
  const cache = new WriteCache(2 * slab, CHUNK_LIMIT);
  cache.remember('a', true, Buffer.alloc(4096));
  cache.remember('b', true, Buffer.alloc(4096));
  cache.remember('c', true, Buffer.alloc(4096)); // a third slab is over the budget
  expect(cache.get('a')).toBeDefined();
  expect(cache.get('c')).toBeUndefined();
  // The limit reached, then the largest hand-off (the limit) still fits: what the buffer can seal.
  cache.remember('b', false, Buffer.alloc(CHUNK_LIMIT - 4096 - 1, 1));
  cache.remember('b', false, Buffer.alloc(CHUNK_LIMIT, 2));
  expect(cache.get('b')?.[0].length).toBe(2 * CHUNK_LIMIT - 1);
  for (let i = 0; i < 20; i++) cache.remember('a', false, Buffer.alloc(16)); // many appends: one slab, still kept
  expect(cache.get('a')?.[0].length).toBe(4096 + 20 * 16);
  cache.remember('a', false, Buffer.alloc(slab)); // does not fit what is left of the slab
  expect(cache.get('a')).toBeUndefined();
  cache.remember('d', true, Buffer.alloc(4096)); // the slab given back makes room again
  expect(cache.get('d')).toBeDefined();
});

test('small appends (Message mode) and a zero budget keep nothing', () => {
  const cache = new WriteCache(1024 * 1024, CHUNK_LIMIT);
  cache.remember('m', true, Buffer.alloc(CHUNK_LIMIT / 8 - 1));
  expect(cache.get('m')).toBeUndefined();
  const none = new WriteCache(0, CHUNK_LIMIT);
  none.remember('a', true, Buffer.alloc(4096));
  expect(none.get('a')).toBeUndefined();
});
