import { gunzipSync, gzipSync } from 'node:zlib';
import { gunzipChunkSize, looksGzipped } from './gzip';

test('the chunk size is the inflated size from the trailer, within 16 KiB and 16 MiB', () => {
  const entries = Buffer.alloc(200_000, 'abc');
  const gz = gzipSync(entries);
  expect(looksGzipped(gz)).toBe(true);
  expect(looksGzipped(entries)).toBe(false);
  expect(gunzipChunkSize(gz)).toBe(200_000);
  expect(gunzipChunkSize(gzipSync(Buffer.from('small')))).toBe(16 * 1024);
  const lying = Buffer.from(gz);
  lying.writeUInt32LE(0xffffffff, lying.length - 4);
  expect(gunzipChunkSize(lying)).toBe(16 * 1024 * 1024);
  expect(gunzipChunkSize(Buffer.from([0x1f, 0x8b]))).toBe(16 * 1024);
});

test('two members inflate whole with the last member’s size as the chunk size', () => {
  const a = Buffer.alloc(100_000, 'a');
  const b = Buffer.alloc(30_000, 'b');
  const gz = Buffer.concat([gzipSync(a), gzipSync(b)]);
  expect(gunzipSync(gz, { chunkSize: gunzipChunkSize(gz) }).equals(Buffer.concat([a, b]))).toBe(true);
});
