/**
 * The pool on real worker threads: jest runs the TypeScript sources, where
 * the pool runs jobs inline, so these tests load the compiled pool (`tsc -b`
 * runs before jest in `pnpm test`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { EventTime, encodeEntry } from '@tributary/forward-protocol';
import pino from 'pino';
import type { EncodeJob } from './encode-job';
import type * as Pool from './encoder-pool';
import { DEFAULT_FIELDS } from './transcode';

const compiled: typeof Pool = require(join(__dirname, '..', '..', 'dist', 'egress', 'encoder-pool.js'));

function job(n: number): EncodeJob {
  const entries = Buffer.concat(Array.from({ length: n }, (_, i) => encodeEntry(new EventTime(1700000000, i), { i })));
  const shared = new Uint8Array(new SharedArrayBuffer(entries.length));
  shared.set(entries);
  return {
    entries: shared,
    records: [{ tag: 't', idPrefix: 'k', partition: 0, start: 0, end: shared.length }],
    fields: DEFAULT_FIELDS,
    gzipLevels: [1],
    ndjson: false,
  };
}

const lines = (r: Awaited<ReturnType<Pool.Encoder['encode']>>) =>
  r.groups.flatMap((g) => gunzipSync(Buffer.concat(g.gzip[0])).toString().split('\n').filter(Boolean));

test('jobs run on worker threads and come back whole', async () => {
  const encoder = compiled.createEncoder(2, pino({ level: 'silent' }));
  try {
    expect(encoder.threads).toBe(2);
    const results = await Promise.all(Array.from({ length: 6 }, () => encoder.encode(job(1000))));
    for (const r of results) {
      expect(r.events).toBe(1000);
      expect(lines(r)).toHaveLength(1000);
      expect(JSON.parse(lines(r)[999])).toEqual({ i: 999, _id: 'k#999', _time: '2023-11-14T22:13:20.000000999Z', _tag: 't' });
    }
  } finally {
    await encoder.close();
  }
});

test('a thread that dies fails its jobs over to the main thread, is logged, and is replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-pool-'));
  const dying = join(dir, 'dying-worker.js');
  writeFileSync(dying, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n");
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (l: string) => logged.push(l) });
  const encoder = compiled.createEncoder(1, logger, dying);
  try {
    const first = await encoder.encode(job(10));
    expect(lines(first)).toHaveLength(10);
    const second = await encoder.encode(job(20)); // the replacement dies too: failed over again
    expect(lines(second)).toHaveLength(20);
    expect(logged.filter((l) => l.includes('TRB_EGRESS_ENCODER'))).toHaveLength(2);
  } finally {
    await encoder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
