/**
 * One contract suite for every DurableLog: always on the embedded log, and on
 * a real Kafka broker when KAFKA_BROKERS is set: by the suite's setup, which
 * starts ../shared/kafka (test/kafka-broker.js), or by hand (e.g.
 * `docker compose up kafka`, then KAFKA_BROKERS=127.0.0.1:9092 pnpm test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { entriesBytes } from '@tributary/core';
import type { DurableLog, LogRecord, StoredRecord } from './durable-log';
import { EmbeddedLog } from './embedded-log';
import { KafkaLog, type KafkaLogOptions } from './kafka-log';
import { FakeCluster, fakeKafkaClient } from './kafka/__fixtures__/fake-consumer';

interface Impl {
  name: string;
  make(): { log: DurableLog; reopen(): DurableLog; cleanup(): void };
}

const impls: Impl[] = [
  {
    name: 'embedded',
    make() {
      const path = mkdtempSync(join(tmpdir(), 'trb-log-'));
      const opts = { path, segmentBytes: 64 * 1024, retentionBytes: 1024 * 1024 * 1024, retentionMs: 3600_000 };
      return {
        log: new EmbeddedLog(opts),
        reopen: () => new EmbeddedLog(opts),
        cleanup: () => rmSync(path, { recursive: true, force: true }),
      };
    },
  },
];
// The Kafka log's own code (KafkaLog, reader, grouped producer) over a fake kafkajs client
// that fetches, resolves, commits and rebalances as kafkajs does (see its header).
impls.push({
  name: 'kafka, fake kafkajs client',
  make() {
    const topic = 'trb-contract';
    const cluster = new FakeCluster(1);
    const opts = {
      brokers: ['127.0.0.1:1'],
      clientId: 'tributary-contract',
      topic,
      partitions: 1,
      replicationFactor: 1,
      minInsyncReplicas: 1,
      compression: 'gzip' as const,
      gzipLevel: 1,
      partitionBy: 'chunk' as const,
      ssl: false,
      requestTimeoutMs: 30_000,
      maxRequestBytes: 983_040,
      producers: 2,
      readerQueueBytes: 1 << 20,
      client: fakeKafkaClient(cluster, topic) as unknown as KafkaLogOptions['client'],
    };
    return { log: new KafkaLog(opts), reopen: () => new KafkaLog(opts), cleanup: () => {} };
  },
});
if (process.env.KAFKA_BROKERS) {
  impls.push({
    name: 'kafka',
    make() {
      const topic = `trb-contract-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
      const opts = {
        brokers: (process.env.KAFKA_BROKERS as string).split(','),
        clientId: 'tributary-contract',
        topic,
        partitions: 1,
        replicationFactor: 1,
        minInsyncReplicas: 1,
        compression: 'gzip' as const,
        gzipLevel: 1,
        partitionBy: 'chunk' as const,
        ssl: false,
        requestTimeoutMs: 30_000,
        maxRequestBytes: 983_040,
        producers: 2,
        readerQueueBytes: 1 << 20,
      };
      return { log: new KafkaLog(opts), reopen: () => new KafkaLog(opts), cleanup: () => {} };
    },
  });
}

const rec = (i: number): LogRecord => ({
  tag: `t.${i % 3}`,
  key: `k${i}`,
  count: 1,
  entries: Buffer.from([0x92, 0x01, 0x81, 0xa1, 0x69, i & 0x7f]),
});

describe.each(impls)('DurableLog contract: $name', (impl) => {
  let env: ReturnType<Impl['make']>;
  beforeEach(() => {
    env = impl.make();
  });
  afterEach(() => env.cleanup());

  test('appended records are read back in order with their fields', async () => {
    await env.log.start();
    await env.log.append([rec(0), rec(1)]);
    await env.log.append([rec(2)]);
    const reader = await env.log.reader('g1');
    const got = [];
    for (let i = 0; i < 20 && got.length < 3; i++) got.push(...(await reader.poll(100, 500)));
    expect(got.map((r) => r.key)).toEqual(['k0', 'k1', 'k2']);
    expect(got[2]).toMatchObject({ tag: 't.2', count: 1 });
    // a log that stores entries gzipped may hand them on so (StoredRecord.gzipped): the same entries either way
    const entries = (r: StoredRecord) => (r.gzipped ? gunzipSync(r.gzipped) : r.entries);
    expect(got.map((r) => entries(r).equals(rec(Number(r.key.slice(1))).entries))).toEqual([true, true, true]);
    expect(got.map(entriesBytes)).toEqual(got.map((r) => rec(Number(r.key.slice(1))).entries.length));
    await env.log.close();
  });

  test('a reader resumes after its group commit; uncommitted records are replayed', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    let reader = await env.log.reader('g');
    const first = [];
    for (let i = 0; i < 20 && first.length < 10; i++) first.push(...(await reader.poll(100, 500)));
    await reader.commit(first.slice(0, 6));
    await env.log.close();

    const again = env.reopen();
    await again.start();
    reader = await again.reader('g');
    const rest = [];
    for (let i = 0; i < 20 && rest.length < 4; i++) rest.push(...(await reader.poll(100, 500)));
    expect(rest.map((r) => r.key)).toEqual(['k6', 'k7', 'k8', 'k9']);
    await again.close();
  });

  test('recentKeys: the newest dedupe keys the log retains, at most max, across a restart', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 30 }, (_, i) => rec(i)));
    await env.log.close();
    const again = env.reopen();
    await again.start();
    expect(await again.recentKeys(5)).toEqual(['k25', 'k26', 'k27', 'k28', 'k29']);
    expect(await again.recentKeys(100)).toHaveLength(30);
    await again.close();
  });

  test('groups are independent', async () => {
    await env.log.start();
    await env.log.append([rec(0), rec(1)]);
    const a = await env.log.reader('a');
    const ra = [];
    for (let i = 0; i < 20 && ra.length < 2; i++) ra.push(...(await a.poll(100, 500)));
    await a.commit(ra);
    const b = await env.log.reader('b');
    const rb = [];
    for (let i = 0; i < 20 && rb.length < 2; i++) rb.push(...(await b.poll(100, 500)));
    expect(rb.map((r) => r.key)).toEqual(['k0', 'k1']);
    await env.log.close();
  });

  test('after commit, polling for several seconds returns nothing', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 5 }, (_, i) => rec(i)));
    const reader = await env.log.reader('quiet');
    const got = [];
    for (let i = 0; i < 20 && got.length < 5; i++) got.push(...(await reader.poll(100, 500)));
    expect(got.map((r) => r.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    await reader.commit(got);
    const again = [];
    const end = Date.now() + 3000;
    for (let i = 0; i < 100 && Date.now() < end; i++) again.push(...(await reader.poll(100, 250)));
    expect(again).toEqual([]);
    expect(reader.caughtUp()).toBe(true);
    await env.log.close();
  });

  test('a second reader in the same group after close resumes after the commit', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    const first = await env.log.reader('handover');
    const read = [];
    for (let i = 0; i < 20 && read.length < 10; i++) read.push(...(await first.poll(100, 500)));
    await first.commit(read.slice(0, 7));
    await first.close();
    const second = await env.log.reader('handover');
    const rest = [];
    for (let i = 0; i < 40 && rest.length < 3; i++) rest.push(...(await second.poll(100, 500)));
    expect(rest.map((r) => r.key)).toEqual(['k7', 'k8', 'k9']);
    for (let i = 0; i < 4; i++) expect(await second.poll(100, 250)).toEqual([]);
    await env.log.close();
  });

  test('poll honours maxRecords', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    const reader = await env.log.reader('small');
    const got = [];
    for (let i = 0; i < 40 && got.length < 10; i++) {
      const r = await reader.poll(3, 500);
      expect(r.length).toBeLessThanOrEqual(3);
      got.push(...r);
    }
    expect(got.map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
    await env.log.close();
  });

  test('several polls before one commit, then commit, then a new reader resumes after it', async () => {
    await env.log.start();
    await env.log.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    const reader = await env.log.reader('pipelined');
    const polls = [];
    let n = 0;
    for (let i = 0; i < 40 && n < 9; i++) {
      const r = await reader.poll(Math.min(3, 9 - n), 500);
      if (r.length) polls.push(r);
      n += r.length;
    }
    expect(polls.flat().map((r) => r.key)).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`));
    expect(polls.length).toBeGreaterThan(1);
    // The last poll's records: the commit covers everything polled before them too.
    await reader.commit(polls[polls.length - 1]);
    await reader.close();
    const next = await env.log.reader('pipelined');
    const rest = [];
    for (let i = 0; i < 40 && rest.length < 1; i++) rest.push(...(await next.poll(100, 500)));
    expect(rest.map((r) => r.key)).toEqual(['k9']);
    expect(await next.poll(100, 500)).toEqual([]);
    await env.log.close();
  });

  test('concurrent appends are all durable and all readable', async () => {
    await env.log.start();
    await Promise.all(Array.from({ length: 50 }, (_, i) => env.log.append([rec(i)])));
    const reader = await env.log.reader('c');
    const got = [];
    for (let i = 0; i < 40 && got.length < 50; i++) got.push(...(await reader.poll(1000, 500)));
    expect(new Set(got.map((r) => r.key)).size).toBe(50);
    await env.log.close();
  });
});

describe('embedded log specifics', () => {
  test('a flipped byte in the last record entries fails its checksum and the record is cut on start', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trb-log-'));
    const opts = { path, segmentBytes: 1 << 20, retentionBytes: 1 << 30, retentionMs: 3600_000 };
    try {
      const log = new EmbeddedLog(opts);
      await log.start();
      await log.append([rec(1), rec(2)]);
      await log.close();
      const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
      const seg = join(path, 'segments', readdirSync(join(path, 'segments'))[0]);
      const data = readFileSync(seg);
      data[data.length - 1] ^= 0xff; // last byte of the last record's entries
      writeFileSync(seg, data);
      const again = new EmbeddedLog(opts);
      await again.start();
      expect(again.endOffset).toBe(1);
      const r = await again.reader('g');
      expect((await r.poll(10, 50)).map((x) => x.key)).toEqual(['k1']);
      await again.close();
    } finally {
      rmSync(path, { recursive: true, force: true });
    }
  });

  test('a torn tail is cut off on start; segments roll and retention deletes consumed ones', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trb-log-'));
    const opts = { path, segmentBytes: 200, retentionBytes: 300, retentionMs: 3600_000 };
    try {
      const log = new EmbeddedLog(opts);
      await log.start();
      for (let i = 0; i < 20; i++) await log.append([rec(i)]);
      const reader = await log.reader('g');
      const got = [];
      for (let i = 0; i < 30 && got.length < 20; i++) got.push(...(await reader.poll(100, 100)));
      expect(got).toHaveLength(20);
      await reader.commit(got);
      await log.close();
      const { readdirSync, appendFileSync } = await import('node:fs');
      const segs = readdirSync(join(path, 'segments'));
      expect(segs.length).toBeLessThan(5);
      appendFileSync(join(path, 'segments', segs.sort()[segs.length - 1]), Buffer.from([0, 0, 0, 50, 1, 2]));
      const again = new EmbeddedLog(opts);
      await again.start();
      expect(again.endOffset).toBe(20);
      await again.append([rec(20)]);
      const r2 = await again.reader('g');
      expect((await r2.poll(10, 100)).map((r) => r.key)).toEqual(['k20']);
      await again.close();
    } finally {
      rmSync(path, { recursive: true, force: true });
    }
  });

  test('appends racing across segment rolls all resolve, in order, and a reader only sees synced records', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trb-log-'));
    const opts = { path, segmentBytes: 300, retentionBytes: 1 << 30, retentionMs: 3600_000 };
    try {
      const log = new EmbeddedLog(opts);
      await log.start();
      const resolved = new Set<string>();
      const seenBeforeResolve: string[] = [];
      const reader = await log.reader('g');
      const got: string[] = [];
      let appending = true;
      const reading = (async () => {
        for (let i = 0; i < 2000 && (appending || got.length < 400); i++) {
          for (const r of await reader.poll(50, 20)) {
            if (!resolved.has(r.key)) seenBeforeResolve.push(r.key);
            got.push(r.key);
          }
        }
      })();
      const waves: Promise<unknown>[] = [];
      for (let w = 0; w < 20; w++) {
        // A wave every few milliseconds: some land while a write is in flight, some while a sync is.
        await new Promise((r) => setTimeout(r, w % 3));
        waves.push(
          Promise.all(
            Array.from({ length: 10 }, (_, j) => {
              const a = rec(w * 20 + j * 2);
              const b = rec(w * 20 + j * 2 + 1);
              return log.append([a, b]).then(() => {
                resolved.add(a.key);
                resolved.add(b.key);
              });
            }),
          ),
        );
      }
      await Promise.all(waves);
      appending = false;
      await reading;
      expect(resolved.size).toBe(400);
      expect(seenBeforeResolve).toEqual([]);
      expect(got).toHaveLength(400);
      // Records of one append are adjacent and in their order.
      for (let i = 0; i < 400; i += 2) expect(Number(got[i + 1].slice(1))).toBe(Number(got[i].slice(1)) + 1);
      await log.close();
      const again = new EmbeddedLog(opts);
      await again.start();
      expect(again.endOffset).toBe(400);
      const { readdirSync } = await import('node:fs');
      // The appends crossed segment rolls (how many depends on how the waves grouped: on a slow disk, more waves
      // share one write, each group going whole into one segment).
      expect(readdirSync(join(path, 'segments')).length).toBeGreaterThan(1);
      await again.close();
    } finally {
      rmSync(path, { recursive: true, force: true });
    }
  });
});
