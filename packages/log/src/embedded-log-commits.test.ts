/**
 * The embedded log's commit path under disk faults: a commit the disk refuses
 * (ENOSPC) rejects with a RetryableError and leaves the position where it was;
 * it succeeds once space returns. An offset file that cannot be read stops the
 * group's reader with a coded error instead of replaying from offset 0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem, RetryableError, TributaryError } from '@tributary/core';
import { LogErrorCode } from './durable-log';
import { EmbeddedLog } from './embedded-log';

const options = (path: string) => ({ path, segmentBytes: 1 << 20, retentionBytes: 1 << 30, retentionMs: 3_600_000 });
const record = (n: number) => ({ tag: 't', key: `k${n}`, count: 1, entries: Buffer.from(`entry ${n}`) });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-log-commits-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('a commit the disk refuses (ENOSPC) rejects retryably, keeps the old position, and succeeds once space returns', async () => {
  const fs = new FaultyFilesystem();
  const log = new EmbeddedLog({ ...options(dir), fs });
  await log.start();
  await log.append([record(0), record(1), record(2)]);
  const reader = await log.reader('g');
  const polled = await reader.poll(10, 0);
  await reader.commit(polled.slice(0, 1));
  expect(log.committed('g')).toBe(1);

  const diskFull = fs.inject({ ops: ['open'], path: 'consumers', code: 'ENOSPC' });
  const failed = await reader.commit(polled).then(
    () => null,
    (err: unknown) => err,
  );
  expect(failed).toBeInstanceOf(RetryableError);
  expect((failed as RetryableError).code).toBe(LogErrorCode.Commit);
  expect((failed as Error).message).toMatch(/no space left/);
  expect(log.committed('g')).toBe(1);

  diskFull(); // space is back
  await reader.commit(polled);
  expect(log.committed('g')).toBe(3);
  await log.close();
  const again = new EmbeddedLog(options(dir));
  await again.start();
  expect(again.committed('g')).toBe(3);
  await again.close();
});

test.each([
  ['a torn file', '{"offset": 2'],
  ['an offset past the end of the log', '{"offset": 99}'],
  ['no offset', '{}'],
])('an offset file with %s stops the reader with TRB_LOG_COMMIT_UNREADABLE instead of replaying from 0', async (_, content) => {
  const first = new EmbeddedLog(options(dir));
  await first.start();
  await first.append([record(0), record(1), record(2)]);
  await first.close();
  writeFileSync(join(dir, 'consumers', 'g.json'), content);

  const log = new EmbeddedLog(options(dir));
  await log.start();
  const reader = await log.reader('g');
  const err = await reader.poll(10, 0).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TributaryError);
  expect((err as TributaryError).code).toBe(LogErrorCode.CommitUnreadable);
  expect((err as Error).message).toMatch(/g\.json/);
  expect((err as Error).message).toMatch(/docs\/operations\.md/);
  // Another group is not affected.
  expect((await (await log.reader('other')).poll(10, 0)).length).toBe(3);
  await log.close();

  // The documented recovery: write the offset to resume from, restart.
  writeFileSync(join(dir, 'consumers', 'g.json'), JSON.stringify({ offset: 2 }));
  const fixed = new EmbeddedLog(options(dir));
  await fixed.start();
  expect((await (await fixed.reader('g')).poll(10, 0)).map((r) => r.key)).toEqual(['k2']);
  await fixed.close();
});
