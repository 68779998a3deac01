/**
 * The Kafka reader driven by kafkajs's own consumer code (runner, fetch
 * manager, consumer group, offset manager, Batch) over a fake cluster that
 * answers the decoded API calls (see __fixtures__/fake-cluster.ts): what the
 * fake-consumer tests assume about kafkajs is here kafkajs itself.
 */
import { silentLogger } from '@tributary/core';
import type { StoredRecord } from '../durable-log';
import { FakeKafkaCluster, kafkajsConsumer } from './__fixtures__/fake-cluster';
import { KafkaReader } from './reader';

const TOPIC = 'chunks';

async function startReader(cluster: FakeKafkaCluster, group: string, maxQueuedBytes = 1 << 20) {
  const consumer = kafkajsConsumer(cluster, group);
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const reader = new KafkaReader({
    consumer,
    topic: TOPIC,
    maxQueuedBytes,
    logger: silentLogger,
    partitionEnds: async () =>
      cluster.partitions.map((list, partition) => ({
        partition,
        committed: cluster.committed(group).get(partition) ?? -1,
        low: 0,
        high: list.length,
      })),
  });
  let joins = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joins++;
  });
  await reader.start();
  return Object.assign(reader, { joins: () => joins });
}

async function pollUntil(reader: KafkaReader, n: number, maxRecords = 100): Promise<StoredRecord[]> {
  const got: StoredRecord[] = [];
  for (let i = 0; i < 200 && got.length < n; i++) got.push(...(await reader.poll(maxRecords, 50)));
  return got;
}

async function pollFor(reader: KafkaReader, ms: number): Promise<StoredRecord[]> {
  const got: StoredRecord[] = [];
  const end = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < end; i++) got.push(...(await reader.poll(100, 50)));
  return got;
}

const keys = (records: StoredRecord[]) => records.map((r) => r.key);

test('kafkajs keeps fetching after the commit, and nothing committed comes back', async () => {
  const cluster = new FakeKafkaCluster(TOPIC, 1);
  for (let i = 0; i < 5; i++) cluster.produce(0, 'a', `k${i}`);
  const reader = await startReader(cluster, 'g');
  const got = await pollUntil(reader, 5);
  expect(keys(got)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  await reader.commit(got);
  expect(cluster.committed('g').get(0)).toBe(5);
  const fetchesBefore = cluster.fetches;
  expect(await pollFor(reader, 1000)).toEqual([]);
  expect(cluster.fetches).toBeGreaterThan(fetchesBefore + 5);
  expect(reader.caughtUp()).toBe(true);
  cluster.produce(0, 'a', 'k5');
  expect(keys(await pollUntil(reader, 1))).toEqual(['k5']);
  await reader.close();
});

test('a full queue holds kafkajs batches; everything arrives once, in order, with maxRecords honoured', async () => {
  const cluster = new FakeKafkaCluster(TOPIC, 1);
  for (let i = 0; i < 120; i++) cluster.produce(0, 'a', `k${i}`);
  const reader = await startReader(cluster, 'g', 600);
  await new Promise((r) => setTimeout(r, 200));
  expect(reader.caughtUp()).toBe(false);
  const got: StoredRecord[] = [];
  for (let i = 0; i < 500 && got.length < 120; i++) {
    const r = await reader.poll(7, 50);
    expect(r.length).toBeLessThanOrEqual(7);
    got.push(...r);
  }
  expect(keys(got)).toEqual(Array.from({ length: 120 }, (_, i) => `k${i}`));
  await reader.commit(got);
  expect(await pollFor(reader, 300)).toEqual([]);
  await reader.close();
});

test('a rebalance that revokes a partition: its records stop, its commit is left out, the kept partition is handed over once', async () => {
  const cluster = new FakeKafkaCluster(TOPIC, 2);
  for (let i = 0; i < 30; i++) {
    cluster.produce(0, 'a', `p0-${i}`);
    cluster.produce(1, 'a', `p1-${i}`);
  }
  // Room for all of partition 0 and part of partition 1 (kafkajs hands over partition 0's batch first).
  const reader = await startReader(cluster, 'g', 6000);
  const first = await pollUntil(reader, 8, 8);
  await reader.commit(first.slice(0, 3));
  // A peer joins: the round-robin assigner gives it partition 1.
  cluster.rebalance(['zz-peer']);
  await expect(reader.commit(first)).rejects.toMatchObject({ retriable: true });
  // kafkajs learns of it at the next heartbeat (at most one wait slice while a batch waits for room) and rejoins.
  for (let i = 0; i < 200 && reader.joins() < 2; i++) await new Promise((r) => setTimeout(r, 25));
  expect(reader.joins()).toBe(2);
  const rest: StoredRecord[] = [];
  for (let i = 0; i < 200; i++) {
    rest.push(...(await reader.poll(100, 20)));
    if ([...first, ...rest].filter((r) => r.partition === 0).length >= 30) break;
  }
  expect(rest.filter((r) => r.partition === 1)).toEqual([]);
  const p0 = [...first, ...rest].filter((r) => r.partition === 0).map((r) => r.key);
  expect(p0).toEqual(Array.from({ length: 30 }, (_, i) => `p0-${i}`));
  const p1Committed = cluster.committed('g').get(1);
  await reader.commit([...first, ...rest]);
  expect(cluster.committed('g').get(0)).toBe(30);
  expect(cluster.committed('g').get(1)).toBe(p1Committed);
  await reader.close();
});

test('a partition revoked and assigned back: the poll that reports it comes before its records again, which start at the group commit', async () => {
  const cluster = new FakeKafkaCluster(TOPIC, 2);
  for (let i = 0; i < 6; i++) {
    cluster.produce(0, 'a', `p0-${i}`);
    cluster.produce(1, 'a', `p1-${i}`);
  }
  const reader = await startReader(cluster, 'g');
  const first = await pollUntil(reader, 12);
  expect(first).toHaveLength(12);
  await reader.commit(first.filter((r) => r.partition === 1 && r.offset < 2));
  expect(cluster.committed('g').get(1)).toBe(2);
  // A peer joins (the round-robin assigner gives it partition 1) and leaves again before this member polls.
  cluster.rebalance(['zz-peer']);
  for (let i = 0; i < 200 && reader.joins() < 2; i++) await new Promise((r) => setTimeout(r, 25));
  cluster.rebalance([]);
  for (let i = 0; i < 200 && reader.joins() < 3; i++) await new Promise((r) => setTimeout(r, 25));
  expect(reader.joins()).toBe(3);
  const polls: Array<{ records: StoredRecord[]; revoked: number[] }> = [];
  for (let i = 0; i < 200 && polls.flatMap((p) => p.records).length < 4; i++) {
    polls.push({ records: await reader.poll(1, 50), revoked: [...reader.revoked()] });
  }
  const reported = polls.findIndex((p) => p.revoked.length > 0);
  expect(reported).toBeGreaterThanOrEqual(0);
  expect(polls[reported].revoked).toEqual([1]);
  expect(polls.filter((p) => p.revoked.length > 0)).toHaveLength(1);
  expect(polls.slice(0, reported).flatMap((p) => p.records)).toEqual([]);
  // kafkajs fetches partition 1 again from the group commit; the kept partition 0 is not handed over again.
  expect(polls.flatMap((p) => p.records).map((r) => `${r.partition}:${r.offset}`)).toEqual(['1:2', '1:3', '1:4', '1:5']);
  expect(await pollFor(reader, 300)).toEqual([]);
  await reader.close();
});

test('a second reader of the group, after the first closed, resumes after its commit', async () => {
  const cluster = new FakeKafkaCluster(TOPIC, 1);
  for (let i = 0; i < 10; i++) cluster.produce(0, 'a', `k${i}`);
  const a = await startReader(cluster, 'g');
  // start() does not wait for the group join (kafkajs's run() resolves only after it): polls wait for the assignment.
  const read = await pollUntil(a, 9, 3);
  expect(keys(read)).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`));
  await a.commit(read);
  await a.close();
  const b = await startReader(cluster, 'g');
  expect(keys(await pollUntil(b, 1))).toEqual(['k9']);
  expect(await pollFor(b, 300)).toEqual([]);
  await b.close();
});
