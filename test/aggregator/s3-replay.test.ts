/**
 * aws_s3 sink against s3rver (a real S3 HTTP server): gzip NDJSON under
 * Hive-style keys. Then egress "crashes" after writing its last batch but
 * before committing it (the aggregator is killed and the commit rolled back
 * one batch): the replay overwrites the same objects, it does not add any.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { type Started, exited, freePort, startRole, startS3rver, tempDir, waitFor } from '@tributary/test-kit';

const N = 3000;

test('S3 objects land under Hive keys; a replay after a crash overwrites instead of duplicating', async () => {
  const dir = tempDir('s3');
  const s3rver = await startS3rver({ directory: join(dir, 's3'), buckets: ['logs'] });
  const s3 = new S3Client({ region: 'us-east-1', endpoint: s3rver.endpoint, forcePathStyle: true, credentials: s3rver.credentials });
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = {
    forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
    dedupe: { type: 'embedded' },
    log: { path: join(dir, 'log') },
    egress: { batch_records: 5, max_wait_ms: 50, objects: { age_ms: 200 }, routes: [{ match: '**', sinks: ['lake'] }] },
    sinks: [
      {
        name: 'lake',
        type: 'aws_s3',
        bucket: 'logs',
        prefix: 'tributary',
        endpoint: s3rver.endpoint,
        force_path_style: true,
        access_key_id: 'S3RVER',
        secret_access_key: 'S3RVER',
      },
    ],
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
  const started: Started[] = [];
  const committed = () => {
    const file = join(dir, 'log', 'consumers', 'tributary-egress.json');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').match(/"offset":(\d+)/)?.[1]) : 0;
  };
  const listAll = async () => (await s3.send(new ListObjectsV2Command({ Bucket: 'logs' }))).Contents ?? [];
  const readAll = async () => {
    const lines: Array<Record<string, unknown>> = [];
    for (const o of await listAll()) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: 'logs', Key: o.Key }))).Body?.transformToByteArray();
      lines.push(
        ...gunzipSync(Buffer.from(body as Uint8Array))
          .toString()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      );
    }
    return lines;
  };
  try {
    started.push(await startRole('aggregator', config, dir, metricsPort));
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: forwardPort });
    for (let c = 0; c < N / 100; c++) {
      // two hours of event time, two tags: several partitions per batch
      const entries = Buffer.concat(
        Array.from({ length: 100 }, (_, i) => encodeEntry(new EventTime(1700000000 + (c % 2) * 3600, i), { n: c * 100 + i })),
      );
      await conn.send(encodePackedForward(c % 3 ? 'web.access' : 'db.slow', entries, { chunk: `s${c}`, size: 100 }), `s${c}`);
    }
    await conn.end();
    await waitFor(() => committed() >= N / 100, 30_000, 'egress to commit everything');
    const before = await listAll();
    expect(
      before.every((o) =>
        /^tributary\/(web\.access|db\.slow)\/dt=2023-11-1[45]\/hour=\d\d\/part-0-\d{20}\.json\.gz$/.test(o.Key as string),
      ),
    ).toBe(true);
    const first = await readAll();
    expect(new Set(first.map((l) => l._id)).size).toBe(N);
    expect(first).toHaveLength(N);

    // Crash after the last batch was written but before its commit: kill -9, roll the commit back one batch.
    started[0].child.kill('SIGKILL');
    await exited(started[0].child);
    const lastBatchStart = Math.max(...before.map((o) => Number(/part-0-(\d+)/.exec(o.Key as string)?.[1])));
    writeFileSync(join(dir, 'log', 'consumers', 'tributary-egress.json'), JSON.stringify({ offset: lastBatchStart }));
    const replayedKeys = before.filter((o) => (o.Key as string).endsWith(`part-0-${String(lastBatchStart).padStart(20, '0')}.json.gz`));
    await new Promise((r) => setTimeout(r, 1100)); // LastModified has 1 s resolution: make a rewrite visible
    started[0] = await startRole('aggregator', config, dir, metricsPort);
    await waitFor(() => committed() >= N / 100, 30_000, 'the replay to commit');
    const after = await listAll();
    expect(after.map((o) => o.Key).sort()).toEqual(before.map((o) => o.Key).sort());
    const rewritten = after.filter((o) => replayedKeys.some((r) => r.Key === o.Key && (o.LastModified as Date) > (r.LastModified as Date)));
    expect(rewritten.length).toBeGreaterThan(0);
    const lines = await readAll();
    expect(lines).toHaveLength(N);
    expect(new Set(lines.map((l) => l._id)).size).toBe(N);
    console.log(
      `s3 replay: ${after.length} objects before and after, ${rewritten.length} rewritten by the replay, ${lines.length} lines, no duplicates`,
    );
    started[0].child.kill('SIGTERM');
    expect(await exited(started[0].child)).toBe(0);
  } finally {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    s3.destroy();
    await s3rver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
