import { WriteCache } from './write-cache';

const CHUNK_LIMIT = 16 * 1024;

test('a small view into a larger read is kept as a copy that owns exactly its bytes (no read, no pool block)', () => {
  const cache = new WriteCache(1024 * 1024, CHUNK_LIMIT);
  const keptBuffers: ArrayBufferLike[] = [];
  for (let i = 0; i < 20; i++) {
    // A read as Buffer.allocUnsafe and Buffer.concat hand it over: a slice of the shared pool below half its size.
    const read = Buffer.allocUnsafe(16 * 1024).fill(i);
    cache.remember(`c${i}`, true, read.subarray(1000, 1000 + 2048));
    const [kept] = cache.get(`c${i}`) ?? [];
    expect(kept?.equals(Buffer.alloc(2048, i))).toBe(true);
    expect(kept?.buffer).not.toBe(read.buffer);
    expect(kept?.buffer.byteLength).toBe(2048);
    keptBuffers.push(kept?.buffer as ArrayBufferLike);
  }
  expect(new Set(keptBuffers).size).toBe(20);
});

test('a payload that fills most of its memory is kept as it is, and the budget counts what is kept', () => {
  const cache = new WriteCache(8 * 1024, CHUNK_LIMIT);
  const own = Buffer.allocUnsafeSlow(4096).fill(1);
  cache.remember('a', true, own);
  expect(cache.get('a')?.[0]).toBe(own);
  cache.remember('a', false, Buffer.allocUnsafeSlow(4096));
  expect(cache.get('a')).toHaveLength(2);
  cache.remember('a', false, Buffer.allocUnsafeSlow(1)); // over the budget: the chunk is read back instead
  expect(cache.get('a')).toBeUndefined();
});

test('a borrowed payload (its memory reused after the append) is kept as a copy; an owned one as it came', () => {
  const cache = new WriteCache(1024 * 1024, CHUNK_LIMIT);
  const staging = Buffer.allocUnsafeSlow(4096).fill(1);
  cache.remember('borrowed', true, staging, true);
  cache.remember('owned', true, Buffer.from(staging), false);
  const owned = cache.get('owned')?.[0];
  staging.fill(2); // the next hand-off reuses the staging buffer
  expect(cache.get('borrowed')?.[0].equals(Buffer.alloc(4096, 1))).toBe(true);
  expect(cache.get('owned')?.[0]).toBe(owned);
});
