import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createRegistry } from '@tributary/core';
import { EventTime, type ForwardChunk, encodeEntry, encodePackedForward, parseRequest } from '@tributary/forward-protocol';
import { type DurableLog, EmbeddedLog, type LogRecord } from '@tributary/log';
import { createIngest } from './ingest';
import { createAggregatorMetrics } from './metrics';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup(maxBacklogBytes: number, backlogWaitMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'trb-ingest-'));
  dirs.push(dir);
  const log = new EmbeddedLog({ path: dir, segmentBytes: 1 << 20, retentionBytes: 1 << 30, retentionMs: 3600_000 });
  await log.start();
  const reader = await log.reader('egress');
  const metrics = createAggregatorMetrics(createRegistry());
  const ingest = createIngest({ log, dedupe: null, claimWaitMs: 0, maxBacklogBytes, backlogWaitMs, metrics });
  return { log, reader, metrics, ingest };
}

const chunk = (n: number): ForwardChunk => ({
  tag: 'app',
  entries: Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeEntry(new EventTime(1700000000, i), { n, pad: 'x'.repeat(50) }))),
  count: 20,
  mode: 'PackedForward',
});

test('with egress log.max_backlog_bytes behind, ingest waits for a commit, then appends', async () => {
  const { log, reader, metrics, ingest } = await setup(1024, 10_000);
  await ingest([chunk(0)], 'forward');
  expect(log.backlogBytes()).toBeGreaterThan(1024);
  let appended = false;
  const second = ingest([chunk(1)], 'forward').then(() => {
    appended = true;
  });
  await new Promise((r) => setTimeout(r, 200));
  expect(appended).toBe(false); // waiting: egress has not committed
  const polled = await reader.poll(10, 100);
  await reader.commit(polled);
  await second;
  expect(appended).toBe(true);
  expect((await metrics.backlogWaits.get()).values[0].value).toBe(1);
  await log.close();
});

test('a batch that waits longer than backlogWaitMs is refused, retryable and unacked; nothing is appended', async () => {
  const { log, ingest } = await setup(1024, 300);
  await ingest([chunk(0)], 'forward');
  const before = log.readableEnd();
  const t = Date.now();
  await expect(ingest([chunk(1)], 'forward')).rejects.toMatchObject({ code: 'TRB_LOG_BACKLOG', retriable: true });
  expect(Date.now() - t).toBeGreaterThanOrEqual(290);
  expect(log.readableEnd()).toBe(before);
  await log.close();
});

test('0 means no bound', async () => {
  const { log, ingest } = await setup(0, 300);
  for (let i = 0; i < 5; i++) await ingest([chunk(i)], 'forward');
  expect(log.readableEnd()).toBe(5);
  await log.close();
});

test('a consumer group file nobody reads any more does not hold ingest back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-ingest-'));
  dirs.push(dir);
  const first = new EmbeddedLog({ path: dir, segmentBytes: 1 << 20, retentionBytes: 1 << 30, retentionMs: 3600_000 });
  await first.start();
  await first.reader('old-group'); // a group that once read, then was renamed in the config
  await first.saveCommit('old-group', 0);
  await first.close();
  const log = new EmbeddedLog({ path: dir, segmentBytes: 1 << 20, retentionBytes: 1 << 30, retentionMs: 3600_000 });
  await log.start();
  const reader = await log.reader('egress');
  const ingest = createIngest({
    log,
    dedupe: null,
    claimWaitMs: 0,
    maxBacklogBytes: 1024,
    backlogWaitMs: 300,
    metrics: createAggregatorMetrics(createRegistry()),
  });
  for (let i = 0; i < 3; i++) {
    await ingest([chunk(i)], 'forward');
    await reader.commit(await reader.poll(10, 100));
  }
  expect(log.readableEnd()).toBe(3);
  await log.close();
});

test("a chunk that arrived gzipped reaches the log with the sender's gzip bytes beside its entries; a plain one without", async () => {
  const appended: LogRecord[][] = [];
  const log = { backlogBytes: () => 0, append: async (records: LogRecord[]) => void appended.push(records) } as unknown as DurableLog;
  const metrics = createAggregatorMetrics(createRegistry());
  const ingest = createIngest({ log, dedupe: null, claimWaitMs: 0, maxBacklogBytes: 0, backlogWaitMs: 0, metrics });
  const plain = chunk(1);
  const frame = encodePackedForward('app', plain.entries, { chunk: 'c1', compressed: 'gzip' });
  const gzipped = parseRequest(frame);
  await ingest([gzipped, plain], 'forward');
  const [a, b] = appended[0];
  expect(a.entries.equals(plain.entries)).toBe(true);
  expect(a.gzipped).toBe(gzipped.gzipped);
  expect(gunzipSync(a.gzipped as Buffer).equals(plain.entries)).toBe(true);
  expect(b.gzipped).toBeUndefined();
});
