import { appendFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  FaultyFilesystem,
  type Filesystem,
  createLogger,
  realFilesystem,
  silentLogger,
  validateConfig,
} from '@tributary/core';
import { type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import { JOURNAL_FILE, LEGACY_JOURNAL_FILE } from './acked-chunk-ids';
import { DiskBuffer } from './disk-buffer';
import { MemoryBuffer } from './memory-buffer';
import {
  type BufferMetrics,
  type DiskBufferConfig,
  ackedIdsWindow,
  bufferConfigSpec,
  bufferLimits,
  bufferRegistry,
  createBuffer,
  diskBufferOptions,
} from './registry';

const buffer = (b: Record<string, unknown>) => validateConfig(bufferConfigSpec, { buffer: b }).buffer;
const diskConfig = (b: Record<string, unknown>) => buffer(b) as DiskBufferConfig;
/** Drops and I/O errors are not what these tests look at. */
const ignoredMetrics = (): BufferMetrics => ({ droppedEvents: { inc: () => {} }, bufferIoErrors: { inc: () => {} } });

const problems = (b: Record<string, unknown>): string[] => {
  try {
    buffer(b);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems ?? [];
    throw err;
  }
  return [];
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-buffer-spec-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("each registered type's name picks its own schema: `{type}` alone gets exactly that schema's keys, defaulted", () => {
  for (const spec of bufferRegistry) {
    const own = Object.keys((spec.schema as { properties: Record<string, unknown> }).properties);
    const config = buffer({ type: spec.type });
    expect(config.type).toBe(spec.type);
    expect(Object.keys(config).sort()).toEqual(own.sort());
  }
});

test('a key of the other buffer type is rejected with its path; each type takes its own keys', () => {
  expect(problems({ type: 'memory', path: 'x' })).toEqual(['buffer.path: unknown key']);
  expect(problems({ type: 'memory', fsync: 'always', memory_cache_bytes: 0 })).toEqual([
    'buffer.fsync: unknown key',
    'buffer.memory_cache_bytes: unknown key',
  ]);
  expect(problems({ type: 'disk', path: 'x', fsync: 'always' })).toEqual([]);
  expect(problems({ type: 'memory', max_bytes: 2097152, overflow: 'drop_oldest' })).toEqual([]);
  expect(problems({ type: 'tape' })).toEqual(['buffer.type: must be one of "disk", "memory"']);
});

test('an absent buffer, an empty one, or one without a type is the disk buffer', () => {
  expect(validateConfig(bufferConfigSpec, {}).buffer.type).toBe('disk');
  expect(buffer({}).type).toBe('disk');
  expect(buffer({ max_bytes: 2097152 })).toMatchObject({ type: 'disk', max_bytes: 2097152, path: './data/forwarder-buffer' });
  expect(buffer({ type: 'memory' })).toEqual({
    type: 'memory',
    max_bytes: 1073741824,
    chunk_limit_bytes: 1048576,
    flush_interval_ms: 1000,
    overflow: 'block',
    acked_chunk_ids: { max_entries: 50000, ttl_ms: 3600000 },
  });
});

test('the disk spec maps every buffer key to its DiskBuffer option', () => {
  const config = diskConfig({
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
  expect(diskBufferOptions(diskConfig({}))).toEqual({
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
  const made = await createBuffer(config, { logger: silentLogger, metrics: ignoredMetrics() });
  expect(made).toBeInstanceOf(MemoryBuffer);
  await made.close();
});

function chunk(tag: string, events: number): ForwardChunk {
  const entries = Buffer.concat(Array.from({ length: events }, (_, n) => encodeEntry(1700000000, { n })));
  return { tag, entries, count: events, mode: 'packed' };
}

test('the disk spec opens the buffer under path and logs what it recovered from an earlier run', async () => {
  const config = buffer({ path: dir, fsync: 'always' });
  const metrics = ignoredMetrics();
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

test('the recovery log line counts the chunk ids found beside recovered events that the journal lacked (a crash between the two writes)', async () => {
  const config = buffer({ path: dir });
  const metrics = ignoredMetrics();
  // The journal writes after the first buffer opened never happen, as if the process died right after its chunk writes.
  let dropping = false;
  const fs: Filesystem = {
    ...realFilesystem,
    writevSync: (fd, buffers, position) =>
      dropping && readlinkSync(`/proc/self/fd/${fd}`).endsWith(JOURNAL_FILE)
        ? buffers.reduce((n, b) => n + b.length, 0)
        : realFilesystem.writevSync(fd, buffers, position),
  };
  const first = await createBuffer(config, { logger: silentLogger, metrics, fs });
  dropping = true;
  await first.append([
    { ...chunk('a', 3), chunkId: 'c-a' },
    { ...chunk('b', 4), chunkId: 'c-b' },
  ]);
  await first.close();
  dropping = false;

  const lines: Array<{ code?: string; msg: string; events?: number; idsRemembered?: number }> = [];
  const logger = createLogger('t', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  const second = await createBuffer(config, { logger, metrics });
  try {
    expect(lines.filter((l) => l.code === 'TRB_BUF_RECOVERED').map((l) => [l.events, l.idsRemembered, l.msg])).toEqual([
      [
        7,
        2,
        `Recovered 7 buffered events from ${dir}. 2 client chunk ids stored beside them were missing from the acked-id journal (a crash between the two writes) and are remembered again.`,
      ],
    ]);
    expect(await second.skipAcked([{ ...chunk('a', 3), chunkId: 'c-a' }])).toEqual([]);
  } finally {
    await second.close();
  }
});

describe('storage errors of an open that fails, besides the one it rejects with, are counted and logged', () => {
  const setup = () => {
    const fs = new FaultyFilesystem();
    const counted: Array<{ op: string; code: string }> = [];
    const metrics: BufferMetrics = { droppedEvents: { inc: () => {} }, bufferIoErrors: { inc: (labels) => void counted.push(labels) } };
    const lines: Array<{ code?: string; op?: string; errno?: string; msg: string }> = [];
    const logger = createLogger('t', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    return { fs, counted, metrics, lines, logger };
  };

  test("the temp acked-id journal's close after its fdatasync failed", async () => {
    const { fs, counted, metrics, lines, logger } = setup();
    fs.inject({ ops: ['fdatasync'], path: `${JOURNAL_FILE}.tmp`, code: 'ENOSPC' });
    fs.inject({ ops: ['close'], path: `${JOURNAL_FILE}.tmp`, code: 'EIO' });
    await expect(createBuffer(buffer({ path: dir }), { logger, metrics, fs })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(counted).toEqual([{ op: 'close', code: 'EIO' }]);
    expect(lines.filter((l) => l.code === 'TRB_BUF_IO').map((l) => [l.op, l.errno, l.msg])).toEqual([
      [
        'close',
        'EIO',
        expect.stringMatching(
          /^Disk buffer close failed: EIO.*The temporary acked chunk id journal could not be closed after its write failed/,
        ),
      ],
    ]);
  });

  test('what recovery repaired is logged even when the acked-id journal then fails to open', async () => {
    const { fs, metrics, lines, logger } = setup();
    const first = await createBuffer(buffer({ path: dir }), { logger: silentLogger, metrics: ignoredMetrics() });
    await first.append([chunk('a', 3)]);
    await first.close();
    const [file] = readdirSync(dir).filter((f) => f.endsWith('.chunk'));
    appendFileSync(join(dir, file), Buffer.from([0, 0, 0, 9, 1, 2])); // a torn record after the events
    fs.inject({ ops: ['fdatasync'], path: `${JOURNAL_FILE}.tmp`, code: 'ENOSPC' });
    await expect(createBuffer(buffer({ path: dir }), { logger, metrics, fs })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(lines.filter((l) => l.code === 'TRB_BUF_RECOVERY_SKIP').map((l) => l.msg)).toEqual([
      expect.stringMatching(new RegExp(`^Buffer file ${file}: torn record header at byte \\d+; kept 3 events, skipped 6 bytes\\.$`)),
    ]);
  });

  test("the acked-id journal's close after the earlier version's journal could not be removed", async () => {
    const { fs, counted, metrics, lines, logger } = setup();
    fs.inject({ ops: ['unlink'], path: LEGACY_JOURNAL_FILE, code: 'EACCES' });
    fs.inject({ ops: ['close'], path: JOURNAL_FILE, code: 'EIO' });
    await expect(createBuffer(buffer({ path: dir }), { logger, metrics, fs })).rejects.toMatchObject({ code: 'EACCES' });
    expect(counted).toEqual([{ op: 'close', code: 'EIO' }]);
    expect(lines.filter((l) => l.code === 'TRB_BUF_IO').map((l) => l.msg)).toEqual([
      expect.stringMatching(/^Disk buffer close failed: EIO.*could not be closed after the open failed/),
    ]);
  });
});
