/**
 * The embedded log never throws in its writer (issue 10 item 2): a record
 * whose tag or key does not fit the 16-bit head lengths rejects its own
 * append with a permanent error, and the log keeps taking and serving the
 * appends around it (it once exited on an uncaught RangeError under load, or
 * froze when idle).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEntry } from '@tributary/forward-protocol';
import { EmbeddedLog } from '@tributary/log';

test('a 64 KiB tag or key rejects that append only; appends before and after are written and read back', async () => {
  const path = mkdtempSync(join(tmpdir(), 'trb-log-hostile-'));
  const log = new EmbeddedLog({ path, segmentBytes: 1024 * 1024, retentionBytes: 1 << 30, retentionMs: 3600_000 });
  await log.start();
  try {
    const entries = encodeEntry(1700000000, { a: 1 });
    const rec = (tag: string, key = '') => ({ tag, key, count: 1, entries });
    const results = await Promise.allSettled([
      log.append([rec('before')]),
      log.append([rec('t'.repeat(65_536))]),
      log.append([rec('ok', 'k'.repeat(70_000))]),
      log.append([rec('after')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(r.reason).toMatchObject({ code: 'TRB_LOG_UNENCODABLE', retriable: false });
    }
    await log.append([rec('later')]);
    const reader = await log.reader('g');
    const read = await reader.poll(10, 1000);
    expect(read.map((r) => r.tag)).toEqual(['before', 'after', 'later']);
  } finally {
    await log.close();
    rmSync(path, { recursive: true, force: true });
  }
}, 20_000);
