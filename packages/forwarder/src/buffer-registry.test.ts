import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, realFilesystem, silentLogger, validateConfig } from '@tributary/core';
import { createRegistry } from '@tributary/core';
import { type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import { ackedIdsWindow, bufferLimits, bufferRegistry, bufferSchema, createBuffer, diskBufferOptions } from './buffer-registry';
import { DiskBuffer } from './buffer/disk-buffer';
import { MemoryBuffer } from './buffer/memory-buffer';
import { forwarderConfigSpec } from './config';
import { createForwarderMetrics } from './metrics';

const buffer = (b: Record<string, unknown>) => validateConfig(forwarderConfigSpec, { buffer: b }).buffer;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-buffer-spec-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("the schema's buffer types are exactly the registry's", () => {
  expect(bufferRegistry.map((s) => s.type)).toEqual([...bufferSchema.properties.type.enum]);
});

test('the disk spec maps every buffer key to its DiskBuffer option', () => {
  const config = buffer({
    path: '/var/lib/trb',
    max_bytes: 2097152,
    chunk_limit_bytes: 4096,
    flush_interval_ms: 250,
    overflow: 'drop_oldest',
    fsync: 'always',
    fsync_interval_ms: 70,
    memory_cache_bytes: 0,
    acked_chunk_ids: { max_entries: 12, ttl_ms: 5000 },
  });
  expect(diskBufferOptions(config, realFilesystem)).toEqual({
    maxBytes: 2097152,
    chunkLimitBytes: 4096,
    flushIntervalMs: 250,
    overflow: 'drop_oldest',
    path: '/var/lib/trb',
    fsync: 'always',
    fsyncIntervalMs: 70,
    memoryCacheBytes: 0,
    ackedIds: { maxEntries: 12, ttlMs: 5000 },
    fs: realFilesystem,
  });
  // Defaults: the schema's, mapped the same way.
  expect(diskBufferOptions(buffer({}))).toEqual({
    maxBytes: 1073741824,
    chunkLimitBytes: 1048576,
    flushIntervalMs: 1000,
    overflow: 'block',
    path: './data/forwarder-buffer',
    fsync: 'interval',
    fsyncIntervalMs: 1000,
    memoryCacheBytes: 16777216,
    ackedIds: { maxEntries: 50000, ttlMs: 3600000 },
    fs: undefined,
  });
});

test('the memory spec maps the limits and the acked-id window, and makes a MemoryBuffer', async () => {
  const config = buffer({ type: 'memory', max_bytes: 3145728, chunk_limit_bytes: 2048, flush_interval_ms: 5, overflow: 'drop_oldest' });
  expect(bufferLimits(config)).toEqual({ maxBytes: 3145728, chunkLimitBytes: 2048, flushIntervalMs: 5, overflow: 'drop_oldest' });
  expect(ackedIdsWindow(config)).toEqual({ maxEntries: 50000, ttlMs: 3600000 });
  const made = await createBuffer(config, { logger: silentLogger, metrics: createForwarderMetrics(createRegistry()) });
  expect(made).toBeInstanceOf(MemoryBuffer);
  await made.close();
});

function chunk(tag: string, events: number): ForwardChunk {
  const entries = Buffer.concat(Array.from({ length: events }, (_, n) => encodeEntry(1700000000, { n })));
  return { tag, entries, count: events, mode: 'packed' };
}

test('the disk spec opens the buffer under path and logs what it recovered from an earlier run', async () => {
  const config = buffer({ path: dir, fsync: 'always' });
  const metrics = createForwarderMetrics(createRegistry());
  const first = await createBuffer(config, { logger: silentLogger, metrics });
  expect(first).toBeInstanceOf(DiskBuffer);
  await first.append([chunk('a', 3), chunk('b', 4)]);
  await first.close();

  const lines: Array<{ code?: string; msg: string; events?: number }> = [];
  const logger = createLogger('t', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  const second = await createBuffer(config, { logger, metrics });
  try {
    expect(second.stats().events).toBe(7);
    expect(lines.filter((l) => l.code === 'TRB_BUF_RECOVERED').map((l) => [l.events, l.msg])).toEqual([
      [7, `Recovered 7 buffered events from ${dir}.`],
    ]);
  } finally {
    await second.close();
  }
});
