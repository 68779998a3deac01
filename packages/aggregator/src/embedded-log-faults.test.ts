/**
 * The embedded log under injected disk faults (a FaultyFilesystem over real
 * files, no jest.mock): a failed append write, a failed fdatasync, a failed
 * segment roll and a failed offset-store write each refuse what they cannot
 * make durable, with a coded RetryableError, and say so in `unavailable()`
 * (/readyz) and a log line.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FaultyFilesystem, RetryableError, createLogger, createRegistry, silentLogger } from '@tributary/core';
import { EventTime, type ForwardChunk, encodeEntry } from '@tributary/forward-protocol';
import { EmbeddedLog, type EmbeddedLogOptions, LogErrorCode, type LogReader, type LogRecord } from '@tributary/log';
import { DEFAULT_FIELDS, EgressWorker, FileSink, createEncoder } from '@tributary/sinks';
import { createIngest } from './ingest';
import { createAggregatorMetrics } from './metrics';

const record = (n: number): LogRecord => ({
  tag: 'app',
  key: `k${n}`,
  count: 1,
  entries: encodeEntry(new EventTime(1700000000, n), { n }),
});

let dir: string;
let fs: FaultyFilesystem;
let lines: Array<{ level: number; code?: string; msg: string }>;
const open: EmbeddedLog[] = [];

function makeLog(over: Partial<EmbeddedLogOptions> = {}): EmbeddedLog {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const log = new EmbeddedLog({
    path: dir,
    segmentBytes: 1 << 20,
    retentionBytes: 1 << 30,
    retentionMs: 3_600_000,
    fs,
    logger: createLogger('test', 'info', sink),
    ...over,
  });
  open.push(log);
  return log;
}

async function readAll(reader: LogReader, want: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < 20 && keys.length < want; i++) keys.push(...(await reader.poll(100, 100)).map((r) => r.key));
  return keys;
}

async function rejection(p: Promise<unknown>): Promise<RetryableError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RetryableError);
  return err as RetryableError;
}

/** Lets the asynchronous pino destination deliver its lines. */
const settle = () => new Promise((r) => setTimeout(r, 50));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-log-faults-'));
  fs = new FaultyFilesystem();
  lines = [];
});
afterEach(async () => {
  for (const log of open.splice(0)) await log.close();
  rmSync(dir, { recursive: true, force: true });
});

test('EIO on the append write: ingest refuses the batch (nothing acked, nothing readable); the log works again once the fault is cleared', async () => {
  const log = makeLog();
  await log.start();
  await log.append([record(0)]);
  const metrics = createAggregatorMetrics(createRegistry());
  const ingest = createIngest({ log, dedupe: null, claimWaitMs: 0, maxBacklogBytes: 0, backlogWaitMs: 0, metrics });
  const chunk: ForwardChunk = { tag: 'app', entries: record(1).entries, count: 1, mode: 'packed', chunkId: 'c1' };

  const remove = fs.inject({ ops: ['writev'], path: 'segments', code: 'EIO' });
  const err = await rejection(ingest([chunk], 'forward'));
  expect(err.code).toBe(LogErrorCode.Append);
  expect(err.message).toMatch(/Appending to the embedded log failed: EIO/);
  expect(fs.failures.get('writev')).toBe(1);
  expect((await metrics.eventsIn.get()).values).toEqual([]); // nothing counted as written
  expect(log.readableEnd()).toBe(1);
  expect(log.unavailable()).toMatch(/append failed: EIO/);
  await settle();
  expect(lines).toContainEqual(
    expect.objectContaining({ level: 40, code: LogErrorCode.Append, msg: expect.stringMatching(/refuses appends for now/) }),
  );

  remove();
  await ingest([chunk], 'forward');
  await log.append([record(2)]);
  expect(log.unavailable()).toBeNull();
  expect((await metrics.eventsIn.get()).values[0].value).toBe(1);
  const reader = await log.reader('g');
  expect((await readAll(reader, 3)).length).toBe(3);
  await log.close();
  // The failed write left nothing behind: a restart finds the three good records only.
  const again = makeLog({ fs: new FaultyFilesystem() });
  await again.start();
  expect(again.endOffset).toBe(3);
  expect(await again.recentKeys(10)).toEqual(['k0', expect.stringMatching(/^c1/), 'k2']);
});

test('a failed fdatasync: no ack for its batch, coded error, appends refused until restart (even with the fault gone), and the records are never readable', async () => {
  const log = makeLog();
  await log.start();
  await log.append([record(0)]);
  fs.inject({ ops: ['fdatasync'], path: 'segments', code: 'EIO', times: 1 });
  const results = await Promise.allSettled([log.append([record(1)]), log.append([record(2)])]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  for (const r of results as PromiseRejectedResult[]) {
    expect(r.reason).toBeInstanceOf(RetryableError);
    expect(r.reason).toMatchObject({ code: LogErrorCode.Append });
  }
  expect(fs.failures.get('fdatasync')).toBe(1);
  expect(log.unavailable()).toMatch(/fdatasync failed \(EIO.*restart the node/);
  // The fault is gone (times: 1), but a retried fdatasync could falsely succeed: still refused.
  const later = await rejection(log.append([record(3)]));
  expect(later.code).toBe(LogErrorCode.Append);
  expect(later.message).toMatch(/refuses appends: fdatasync failed/);
  expect(log.readableEnd()).toBe(1);
  const reader = await log.reader('g');
  expect(await readAll(reader, 1)).toEqual(['k0']);
  expect(await reader.poll(100, 50)).toEqual([]);
  await settle();
  expect(lines).toContainEqual(
    expect.objectContaining({ level: 50, code: LogErrorCode.Append, msg: expect.stringMatching(/fdatasync failed/) }),
  );
  await log.close();

  // A restart recovers from the files and takes appends again.
  const again = makeLog();
  await again.start();
  expect(again.unavailable()).toBeNull();
  await again.append([record(4)]);
  expect(again.readableEnd()).toBe(again.endOffset);
});

test('ENOSPC when rolling to a new segment: the waiting appends are refused; once space returns the next append rolls and all good records read back in order', async () => {
  const log = makeLog({ segmentBytes: 200 });
  await log.start();
  const segmentFiles = () => readdirSync(join(dir, 'segments'));
  const first = join(dir, 'segments', segmentFiles()[0]);
  let n = 0;
  while (statSync(first).size < 200 && n < 50) await log.append([record(n++)]);
  expect(n).toBeLessThan(50);
  expect(segmentFiles()).toHaveLength(1); // full: the writer rolls before the next group
  const filled = n;
  const remove = fs.inject({ ops: ['open'], path: 'segments', code: 'ENOSPC' });
  const results = await Promise.allSettled([log.append([record(n++)]), log.append([record(n++)])]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: LogErrorCode.Append, retriable: true });
  expect((results[0] as PromiseRejectedResult).reason.message).toMatch(/Creating an embedded log segment failed: ENOSPC: no space left/);
  expect(log.unavailable()).toMatch(/creating a segment failed/);
  expect(log.endOffset).toBe(filled);

  remove();
  await log.append([record(100)]);
  expect(log.unavailable()).toBeNull();
  expect(segmentFiles()).toHaveLength(2);
  const reader = await log.reader('g');
  const want = [...Array.from({ length: filled }, (_, i) => `k${i}`), 'k100'];
  expect(await readAll(reader, want.length)).toEqual(want);
});

test('a failed offset-store write rejects the commit; egress backs off and retries until the position is saved', async () => {
  const log = makeLog();
  await log.start();
  for (let i = 0; i < 3; i++) await log.append([record(i)]);
  fs.inject({ ops: ['writev'], path: 'consumers', code: 'ENOSPC', times: 3 });
  const errors: string[] = [];
  const worker = new EgressWorker({
    reader: await log.reader('g'),
    routes: [{ match: '**', sinks: [new FileSink({ name: 'out', path: join(dir, 'out'), gzipLevel: 1 })] }],
    encoder: createEncoder(0, silentLogger),
    fields: DEFAULT_FIELDS,
    pollRecords: 10,
    maxWaitMs: 20,
    objects: { bytes: 1 << 30, ageMs: 50, maxTags: 128 },
    backoff: { initialMs: 5, maxMs: 20 },
    logger: silentLogger,
    metrics: {
      eventsOut: () => {},
      sinkFailure: () => {},
      deadLetters: () => {},
      deadLetterEvents: () => {},
      unrouted: () => {},
      committed: () => {},
      loopError: (stage) => errors.push(stage),
      objectWritten: () => {},
    },
  });
  worker.start();
  const deadline = Date.now() + 10_000;
  while (log.committed('g') < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await worker.stop(1000);
  expect(log.committed('g')).toBe(3);
  expect(errors).toEqual(['commit', 'commit', 'commit']);
  expect(fs.failures.get('writev')).toBe(3);
  expect(readdirSync(join(dir, 'consumers'))).toEqual(['g.json']); // no temp file of a failed attempt
  await log.close();
  const again = makeLog();
  await again.start();
  expect(again.committed('g')).toBe(3);
});
