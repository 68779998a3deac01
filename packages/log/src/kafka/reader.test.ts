/**
 * The Kafka reader against a fake consumer that fetches, re-delivers and
 * rebalances the way kafkajs 2.2.4 does (see __fixtures__/fake-consumer.ts for
 * the kafkajs code each behaviour mirrors).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { entriesBytes, silentLogger } from '@tributary/core';
import type { StoredRecord } from '../durable-log';
import { FakeCluster, FakeConsumer } from './__fixtures__/fake-consumer';
import { HEARTBEAT_SLICE_MS, KafkaReader, type ReaderConsumer } from './reader';

const TOPIC = 't';

function makeReader(cluster: FakeCluster, assignment: number[], maxQueuedBytes = 1 << 20) {
  const consumer = new FakeConsumer(cluster, TOPIC, { assignment });
  const reader = new KafkaReader({
    consumer: consumer as unknown as ReaderConsumer,
    topic: TOPIC,
    maxQueuedBytes,
    logger: silentLogger,
    partitionEnds: async () => cluster.ends(),
  });
  return { consumer, reader };
}

async function pollUntil(reader: KafkaReader, n: number, maxRecords = 100): Promise<StoredRecord[]> {
  const got: StoredRecord[] = [];
  for (let i = 0; i < 100 && got.length < n; i++) got.push(...(await reader.poll(maxRecords, 50)));
  return got;
}

async function pollFor(reader: KafkaReader, ms: number): Promise<StoredRecord[]> {
  const got: StoredRecord[] = [];
  const end = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < end; i++) got.push(...(await reader.poll(100, 50)));
  return got;
}

const keys = (records: StoredRecord[]) => records.map((r) => r.key);

test('the fake re-delivers a batch whose offsets were not resolved, as kafkajs does', async () => {
  const cluster = new FakeCluster(1);
  cluster.produce(0, 'a', 'k0');
  const consumer = new FakeConsumer(cluster, TOPIC, { assignment: [0] });
  let calls = 0;
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async () => {
      calls++;
    },
  });
  for (let i = 0; i < 200 && calls <= 5; i++) await new Promise((r) => setTimeout(r, 10));
  await consumer.disconnect();
  expect(calls).toBeGreaterThan(5);
  expect(consumer.deliveries.get('0:0')).toBe(calls);
});

test('each record is fetched once, handed to poll once, and after commit polling returns nothing', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 5; i++) cluster.produce(0, 'a', `k${i}`);
  const { consumer, reader } = makeReader(cluster, [0]);
  await reader.start();
  const got = await pollUntil(reader, 5);
  expect(keys(got)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  expect(got.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
  await reader.commit(got);
  expect(cluster.committed().get(0)).toBe(5);
  const batchesBefore = consumer.batches;
  expect(await pollFor(reader, 500)).toEqual([]);
  expect(consumer.batches).toBe(batchesBefore);
  expect([...consumer.deliveries.values()]).toEqual([1, 1, 1, 1, 1]);
  expect(reader.caughtUp()).toBe(true);
  await reader.close();
});

test('poll honours maxRecords, splitting a fetched batch', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 10; i++) cluster.produce(0, 'a', `k${i}`);
  const { reader } = makeReader(cluster, [0]);
  await reader.start();
  const sizes: number[] = [];
  const got: StoredRecord[] = [];
  for (let i = 0; i < 50 && got.length < 10; i++) {
    const r = await reader.poll(3, 50);
    if (r.length) sizes.push(r.length);
    got.push(...r);
  }
  expect(sizes).toEqual([3, 3, 3, 1]);
  expect(keys(got)).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
  await reader.close();
});

test('a full queue holds the batch with heartbeats; draining it delivers everything once, in order', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 10; i++) cluster.produce(0, 'a', `k${i}`);
  // Room for about two records (each counts its entries, key, tag and a fixed overhead).
  const { consumer, reader } = makeReader(cluster, [0], 300);
  await reader.start();
  await new Promise((r) => setTimeout(r, HEARTBEAT_SLICE_MS * 1.5));
  expect(consumer.batches).toBe(1);
  expect(consumer.heartbeats).toBeGreaterThanOrEqual(1);
  expect(reader.caughtUp()).toBe(false);
  const got = await pollUntil(reader, 10, 1);
  expect(keys(got)).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
  expect([...consumer.deliveries.values()].every((n) => n === 1)).toBe(true);
  await reader.close();
});

test('close ends a batch waiting for room, and its timers with it', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 10; i++) cluster.produce(0, 'a', `k${i}`);
  const { reader } = makeReader(cluster, [0], 300);
  await reader.start();
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await reader.close();
  expect(Date.now() - t0).toBeLessThan(HEARTBEAT_SLICE_MS / 2);
  expect(await reader.poll(10, 10)).toEqual([]);
});

test('a rebalance ends a blocked batch; a revoked partition is dropped and not committed, a kept one is not handed over twice', async () => {
  const cluster = new FakeCluster(2);
  for (let i = 0; i < 6; i++) {
    cluster.produce(0, 'a', `p0-${i}`);
    cluster.produce(1, 'a', `p1-${i}`);
  }
  const { consumer, reader } = makeReader(cluster, [0, 1], 600);
  await reader.start();
  const first = await pollUntil(reader, 4, 4);
  expect(first.length).toBe(4);
  await reader.commit(first.slice(0, 2));
  consumer.rebalance([0]);
  // While the group rebalances, a commit is refused with a retryable error rather than written.
  const during = reader.commit(first);
  await expect(during).rejects.toMatchObject({ retriable: true });
  // The member learns of the rebalance at its next heartbeat (at most one wait slice while a batch waits for room).
  for (let i = 0; i < 200 && consumer.joins < 2; i++) await new Promise((r) => setTimeout(r, 25));
  expect(consumer.joins).toBe(2);
  const rest: StoredRecord[] = [];
  for (let i = 0; i < 100; i++) {
    rest.push(...(await reader.poll(100, 20)));
    if (rest.filter((r) => r.partition === 0).length + first.filter((r) => r.partition === 0).length >= 6) break;
  }
  const all = [...first, ...rest];
  const p0 = all.filter((r) => r.partition === 0).map((r) => r.key);
  expect(p0).toEqual(Array.from({ length: 6 }, (_, i) => `p0-${i}`));
  // Records of partition 1 after the rebalance never reach poll.
  expect(rest.filter((r) => r.partition === 1)).toEqual([]);
  // Partition 0 was fetched again from its group commit; the reader dropped what it had already handed over.
  expect(Math.max(...[...consumer.deliveries].filter(([k]) => k.startsWith('0:')).map(([, n]) => n))).toBeGreaterThan(1);
  const p1Before = cluster.committed().get(1);
  await reader.commit(all);
  expect(cluster.committed().get(0)).toBe(6);
  expect(cluster.committed().get(1)).toBe(p1Before);
  expect(reader.caughtUp()).toBe(true);
  await reader.close();
});

test('a commit while the consumer is stopped is refused, not silently dropped as kafkajs would', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 3; i++) cluster.produce(0, 'a', `k${i}`);
  const { consumer, reader } = makeReader(cluster, [0]);
  await reader.start();
  const got = await pollUntil(reader, 3);
  consumer.crash();
  await expect(reader.commit(got)).rejects.toMatchObject({ code: 'TRB_LOG_REBALANCING', retriable: true });
  expect(cluster.committed().get(0)).toBeUndefined();
  await reader.close();
});

test('a second reader of the group resumes after the first one commit; nothing committed comes back', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 10; i++) cluster.produce(0, 'a', `k${i}`);
  const a = makeReader(cluster, [0]);
  await a.reader.start();
  const polls = [await a.reader.poll(3, 100), await a.reader.poll(3, 100), await a.reader.poll(3, 100)];
  // Several polls, then one commit of the last poll: it covers everything polled before.
  await a.reader.commit(polls[2]);
  await a.reader.close();
  const b = makeReader(cluster, [0]);
  await b.reader.start();
  expect(keys(await pollUntil(b.reader, 1))).toEqual(['k9']);
  expect(await pollFor(b.reader, 200)).toEqual([]);
  await b.reader.close();
});

test('caughtUp holds for a partition that never delivered a batch only once its end is known', async () => {
  const cluster = new FakeCluster(2);
  cluster.produce(0, 'a', 'k0');
  let lookups = 0;
  const consumer = new FakeConsumer(cluster, TOPIC, { assignment: [0, 1] });
  const reader = new KafkaReader({
    consumer: consumer as unknown as ReaderConsumer,
    topic: TOPIC,
    maxQueuedBytes: 1 << 20,
    logger: silentLogger,
    partitionEnds: async () => {
      lookups++;
      if (lookups === 1) throw new Error('broker unreachable');
      return cluster.ends();
    },
  });
  await reader.start();
  expect(keys(await pollUntil(reader, 1))).toEqual(['k0']);
  expect(reader.caughtUp()).toBe(false); // partition 1's end is unknown (the look-up failed)
  for (let i = 0; i < 40 && !reader.caughtUp(); i++) await reader.poll(10, 50);
  expect(lookups).toBe(2);
  expect(reader.caughtUp()).toBe(true);
  await reader.close();
});

test('caughtUp(partition): a partition read to its end counts as caught up while another still has records queued', async () => {
  const cluster = new FakeCluster(2);
  for (let i = 0; i < 5; i++) cluster.produce(0, 'a', `p0-${i}`);
  for (let i = 0; i < 5; i++) cluster.produce(1, 'a', `p1-${i}`);
  const { reader } = makeReader(cluster, [0, 1]);
  await reader.start();
  const got: StoredRecord[] = [];
  // read until partition 0 is all out, leaving partition 1 partly queued
  for (let i = 0; i < 100 && got.filter((r) => r.partition === 0).length < 5; i++) got.push(...(await reader.poll(1, 50)));
  const p1Left = 5 - got.filter((r) => r.partition === 1).length;
  expect(p1Left).toBeGreaterThan(0);
  expect(reader.caughtUp(0)).toBe(true);
  expect(reader.caughtUp(1)).toBe(false);
  expect(reader.caughtUp()).toBe(false);
  got.push(...(await pollUntil(reader, p1Left)));
  expect(reader.caughtUp(1)).toBe(true);
  expect(reader.caughtUp()).toBe(true);
  // Not assigned here: this member does not read it to its end, so egress never cuts a window of it on age.
  expect(reader.caughtUp(7)).toBe(false);
  await reader.close();
});

test('caughtUp(partition, since): an end seen before `since` is looked up again, and a waiting poll returns when it is', async () => {
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 3; i++) cluster.produce(0, 'a', `k${i}`);
  const { reader } = makeReader(cluster, [0]);
  await reader.start();
  await pollUntil(reader, 3);
  expect(reader.caughtUp(0)).toBe(true);
  const since = Date.now() + 1;
  await new Promise((r) => setTimeout(r, 5));
  // The end was seen before `since`: not caught up as of then, until a look-up (at most one a second) sees it again.
  expect(reader.caughtUp(0, since)).toBe(false);
  const t0 = Date.now();
  const polled = await reader.poll(10, 5000);
  expect(polled).toEqual([]);
  expect(Date.now() - t0).toBeLessThan(2500); // woken by the look-up, not by the 5 s wait
  expect(reader.caughtUp(0, since)).toBe(true);
  // A record appended meanwhile: the look-up sees the new end, so the partition is not caught up until it is read.
  cluster.produce(0, 'a', 'k3');
  const later = Date.now() + 1;
  await new Promise((r) => setTimeout(r, 5));
  expect(reader.caughtUp(0, later)).toBe(false);
  const more = await pollUntil(reader, 1);
  expect(keys(more)).toEqual(['k3']);
  await reader.close();
});

test('a partition revoked and assigned back: the poll that reports it comes before its records again, which start at the group commit', async () => {
  const cluster = new FakeCluster(2);
  for (let i = 0; i < 6; i++) {
    cluster.produce(0, 'a', `p0-${i}`);
    cluster.produce(1, 'a', `p1-${i}`);
  }
  const { consumer, reader } = makeReader(cluster, [0, 1]);
  await reader.start();
  const first = await pollUntil(reader, 12);
  expect(reader.revoked()).toEqual([]);
  await reader.commit(first.filter((r) => r.partition === 0 && r.offset < 2));
  expect(cluster.committed().get(0)).toBe(2);
  // Revoked and assigned back between two polls (the member polls nothing meanwhile).
  consumer.rebalance([1]);
  for (let i = 0; i < 200 && consumer.joins < 2; i++) await new Promise((r) => setTimeout(r, 10));
  consumer.rebalance([0, 1]);
  for (let i = 0; i < 200 && consumer.joins < 3; i++) await new Promise((r) => setTimeout(r, 10));
  expect(consumer.joins).toBe(3);
  const polls: Array<{ records: StoredRecord[]; revoked: number[] }> = [];
  for (let i = 0; i < 100 && polls.flatMap((p) => p.records).length < 4; i++) {
    polls.push({ records: await reader.poll(1, 50), revoked: [...reader.revoked()] });
  }
  const reported = polls.findIndex((p) => p.revoked.length > 0);
  expect(reported).toBeGreaterThanOrEqual(0);
  expect(polls[reported].revoked).toEqual([0]);
  // Reported once, at or before the first poll holding partition 0's records again.
  expect(polls.filter((p) => p.revoked.length > 0)).toHaveLength(1);
  expect(polls.slice(0, reported).flatMap((p) => p.records)).toEqual([]);
  // Partition 0 comes again from its group commit, including records polled before; partition 1 (kept) does not.
  expect(polls.flatMap((p) => p.records).map((r) => `${r.partition}:${r.offset}`)).toEqual(['0:2', '0:3', '0:4', '0:5']);
  await reader.close();
});

test('revoked() belongs to the last poll: a poll of the closed reader takes nothing and reports no revocation again', async () => {
  const cluster = new FakeCluster(2);
  for (let i = 0; i < 3; i++) cluster.produce(0, 'a', `p0-${i}`);
  const { consumer, reader } = makeReader(cluster, [0, 1]);
  await reader.start();
  expect(await pollUntil(reader, 3)).toHaveLength(3);
  consumer.rebalance([1]);
  for (let i = 0; i < 200 && consumer.joins < 2; i++) await new Promise((r) => setTimeout(r, 10));
  expect(consumer.joins).toBe(2);
  expect(await reader.poll(10, 0)).toEqual([]);
  expect(reader.revoked()).toEqual([0]);
  await reader.close();
  expect(await reader.poll(10, 0)).toEqual([]);
  expect(reader.revoked()).toEqual([]); // egress would drop partition 0's windows again on every such poll
});

test('a poll hands out at most 8 MiB of entries (at least one record), whatever maxRecords allows', async () => {
  const cluster = new FakeCluster(1);
  const mib = (n: number, k: string) =>
    cluster.append(0, Buffer.alloc(n * 1024 * 1024, k), { tag: Buffer.from('a'), key: Buffer.from(k), count: Buffer.from('1') });
  for (let i = 0; i < 6; i++) mib(3, `k${i}`); // 18 MiB of 3 MiB records
  mib(10, 'big'); // one record over the cap
  const { reader } = makeReader(cluster, [0], 64 << 20);
  await reader.start();
  const polls: number[][] = [];
  for (let i = 0; i < 100 && polls.flat().length < 7; i++) {
    const got = await reader.poll(256, 50);
    if (got.length) polls.push(got.map((r) => r.entries.length / (1024 * 1024)));
  }
  // Records come as they were fetched; no poll passes 8 MiB unless it is one record alone.
  for (const p of polls) expect(p.length === 1 || p.reduce((a, b) => a + b, 0) <= 8).toBe(true);
  expect(polls.flat()).toEqual([3, 3, 3, 3, 3, 3, 10]);
  await reader.close();
});

test('a consumer that cannot start makes every poll fail with the reason, so egress counts it and /readyz shows it', async () => {
  const cluster = new FakeCluster(1);
  const { consumer, reader } = makeReader(cluster, [0]);
  consumer.run = async () => {
    throw new Error('the group coordinator is not available');
  };
  await reader.start();
  await new Promise((r) => setImmediate(r));
  await expect(reader.poll(10, 10)).rejects.toMatchObject({
    code: 'TRB_LOG_CONSUMER_CRASH',
    retriable: true,
    message: expect.stringContaining('the group coordinator is not available'),
  });
  await reader.close();
});

describe('stored values (kafka/value-codec.ts)', () => {
  const headers = (key: string, codec?: string) => ({
    tag: Buffer.from('a'),
    key: Buffer.from(key),
    count: Buffer.from('2'),
    ...(codec ? { codec: Buffer.from(codec) } : {}),
  });

  test('gzip values (handed on gzipped, sized inflated) and plain values (the earlier format) read in one topic, in order', async () => {
    const cluster = new FakeCluster(1);
    const entries = (i: number) => Buffer.from(`entries of chunk ${i} `.repeat(50));
    cluster.append(0, gzipSync(entries(0)), headers('k0', 'gzip'));
    cluster.append(0, entries(1), headers('k1'));
    cluster.append(0, Buffer.concat([gzipSync(entries(2).subarray(0, 100)), gzipSync(entries(2).subarray(100))]), headers('k2', 'gzip'));
    const { reader } = makeReader(cluster, [0]);
    await reader.start();
    const got = await pollUntil(reader, 3);
    expect(keys(got)).toEqual(['k0', 'k1', 'k2']);
    got.forEach((r, i) => {
      expect((r.gzipped ? gunzipSync(r.gzipped) : r.entries).equals(entries(i))).toBe(true);
      expect(r.unreadable).toBeUndefined();
      expect(r.count).toBe(2);
    });
    expect(got.map((r) => [r.entries.length, r.gzipped !== undefined])).toEqual([
      [0, true],
      [entries(1).length, false],
      [0, true],
    ]);
    expect(entriesBytes(got[0])).toBe(entries(0).length);
    await reader.close();
  });

  test('a value of a codec it does not read, or gzip without the magic bytes, is handed out once as unreadable (its stored bytes, a coded error line), and reading goes on', async () => {
    const cluster = new FakeCluster(1);
    const cut = gzipSync(Buffer.alloc(5000, 1)).subarray(0, 30);
    cluster.append(0, cut, headers('bad-gzip', 'gzip'));
    cluster.append(0, Buffer.from('not gzip at all'), headers('no-magic', 'gzip'));
    cluster.append(0, Buffer.from('x'), headers('other-codec', 'zstd'));
    cluster.append(0, gzipSync(Buffer.from('fine')), headers('good', 'gzip'));
    const errors: Array<{ code: string; offset: string }> = [];
    const consumer = new FakeConsumer(cluster, TOPIC, { assignment: [0] });
    const reader = new KafkaReader({
      consumer: consumer as unknown as ReaderConsumer,
      topic: TOPIC,
      maxQueuedBytes: 1 << 20,
      logger: { ...silentLogger, error: (o: { code: string; offset: string }) => errors.push(o) },
      partitionEnds: async () => cluster.ends(),
    });
    await reader.start();
    const got = await pollUntil(reader, 4);
    expect(keys(got)).toEqual(['bad-gzip', 'no-magic', 'other-codec', 'good']);
    // a cut gzip starts like gzip: handed on as it is; where it is inflated (egress) it becomes a dead letter
    expect(got[0].unreadable).toBeUndefined();
    expect(got[0].gzipped?.equals(cut)).toBe(true);
    expect(got[1].unreadable).toMatch(/offset 1 cannot be read: its value is not gzip/);
    expect(got[1].entries.toString()).toBe('not gzip at all');
    expect(got[2].unreadable).toMatch(/codec header is "zstd"/);
    expect(got[3].unreadable).toBeUndefined();
    expect(gunzipSync(got[3].gzipped as Buffer).toString()).toBe('fine');
    expect(errors.map((e) => [e.code, String(e.offset)])).toEqual([
      ['TRB_LOG_CORRUPT', '1'],
      ['TRB_LOG_CORRUPT', '2'],
    ]);
    await reader.commit(got);
    expect(cluster.committed().get(0)).toBe(4);
    expect(await pollFor(reader, 300)).toEqual([]);
    await reader.close();
  });
});
