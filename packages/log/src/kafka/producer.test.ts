/**
 * Grouped appends: produce requests per N concurrent appends, through the
 * KafkaLog with a fake kafkajs client whose `send` takes a few milliseconds,
 * as a broker round trip with acks=all does.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { gzipInflatedSize } from '@tributary/core';
import { CompressionTypes, type Kafka, type ProducerRecord } from 'kafkajs';
import type { LogRecord } from '../durable-log';
import { KafkaLog, type KafkaLogOptions } from '../kafka-log';
import { GroupedSender } from './producer';

function fakeClient(sendMs: number, fail: (call: number) => boolean = () => false) {
  const sends: ProducerRecord[] = [];
  const producerConfigs: unknown[] = [];
  const client = {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => ['t'],
      createTopics: async () => true,
    }),
    producer: (config: unknown) => {
      producerConfigs.push(config);
      return {
        connect: async () => {},
        disconnect: async () => {},
        send: async (record: ProducerRecord) => {
          const call = sends.push(record);
          await new Promise((r) => setTimeout(r, sendMs));
          if (fail(call)) throw new Error('NOT_ENOUGH_REPLICAS');
          return [];
        },
      };
    },
    consumer: () => {
      throw new Error('not used');
    },
  };
  return { client: client as unknown as Pick<Kafka, 'admin' | 'producer' | 'consumer'>, sends, producerConfigs };
}

const options = (client: KafkaLogOptions['client'], maxRequestBytes = 1 << 20): KafkaLogOptions => ({
  brokers: ['127.0.0.1:1'],
  clientId: 'test',
  topic: 't',
  partitions: 3,
  replicationFactor: 1,
  minInsyncReplicas: 1,
  compression: 'gzip',
  gzipLevel: 1,
  partitionBy: 'chunk',
  ssl: false,
  requestTimeoutMs: 1000,
  maxRequestBytes,
  producers: 1,
  readerQueueBytes: 1 << 20,
  client,
});

const rec = (i: number): LogRecord => ({ tag: 'app.web', key: `k${i}`, count: 2, entries: Buffer.alloc(100, i) });

test('100 concurrent appends go out in 2 produce requests (one alone, the rest grouped), idempotent and acks=all', async () => {
  const { client, sends, producerConfigs } = fakeClient(20);
  const log = new KafkaLog({ ...options(client), compression: 'none' });
  await log.start();
  await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([rec(i)])));
  expect(sends.map((s) => s.messages.length)).toEqual([1, 99]);
  expect(sends.flatMap((s) => s.messages.map((m) => m.key))).toEqual(Array.from({ length: 100 }, (_, i) => `k${i}`));
  for (const s of sends) expect(s).toMatchObject({ topic: 't', acks: -1, compression: CompressionTypes.None });
  expect(sends[1].messages[5].headers).toEqual({ tag: 'app.web', key: 'k6', count: '2' });
  expect(sends[1].messages[5].value).toEqual(rec(6).entries);
  expect(producerConfigs[0]).toMatchObject({ idempotent: true, maxInFlightRequests: 1 });
  await log.close();
});

test('appends arriving in waves share the request that follows the one in flight', async () => {
  const { client, sends } = fakeClient(30);
  const log = new KafkaLog(options(client));
  await log.start();
  const all: Promise<void>[] = [];
  for (let w = 0; w < 5; w++) {
    for (let j = 0; j < 20; j++) all.push(log.append([rec(w * 20 + j), rec(1000 + w * 20 + j)]));
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(all);
  expect(sends.reduce((n, s) => n + s.messages.length, 0)).toBe(200);
  // Each wave lands in one tick: at most one request of its own plus one shared, however the timers run; not 100.
  expect(sends.length).toBeLessThanOrEqual(10);
  // An append's records stay together, in order.
  for (const s of sends) {
    const keys = s.messages.map((m) => m.key as string);
    for (let i = 0; i < keys.length; i += 2) expect(Number(keys[i + 1].slice(1))).toBe(Number(keys[i].slice(1)) + 1000);
  }
  await log.close();
});

test('a request never carries more than max_request_bytes, except one oversized append alone', async () => {
  const sizes: number[] = [];
  const sender = new GroupedSender(
    [
      async (messages) => {
        sizes.push(messages.reduce((n, m) => n + (m.value as Buffer).length, 0));
        await new Promise((r) => setTimeout(r, 5));
      },
    ],
    1000,
  );
  const msg = (n: number) => [{ value: Buffer.alloc(n) }];
  await Promise.all([
    sender.append(msg(400), 400),
    ...Array.from({ length: 9 }, () => sender.append(msg(400), 400)),
    sender.append(msg(5000), 5000),
  ]);
  expect(sizes).toEqual([400, 800, 800, 800, 800, 400, 5000]);
});

test('a failed request rejects every append in it with a retryable error; the next group goes on', async () => {
  const { client, sends } = fakeClient(20, (call) => call === 2);
  // compression none: gzipped values finish on the threadpool in any order, and which append reaches the idle sender first is what this test fixes
  const log = new KafkaLog({ ...options(client), compression: 'none' });
  await log.start();
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append([rec(i)])));
  expect(results.map((r) => r.status)).toEqual(['fulfilled', ...Array(9).fill('rejected')]);
  expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'TRB_LOG_APPEND', retriable: true });
  expect(log.unavailable()).toMatch(/NOT_ENOUGH_REPLICAS/);
  await log.append([rec(10)]);
  expect(log.unavailable()).toBeNull();
  expect(sends.map((s) => s.messages.length)).toEqual([1, 9, 1]);
  await log.close();
});

test('gzip: each value is its entries gzipped at the configured level, with a codec header; requests are not compressed again', async () => {
  const { client, sends } = fakeClient(1);
  const log = new KafkaLog({ ...options(client), gzipLevel: 9 });
  await log.start();
  const entries = Buffer.from(Array.from({ length: 5000 }, (_, i) => `{"n":${i},"msg":"event ${i * 7919}"}`).join('\n'));
  await log.append([{ tag: 'app.web', key: 'k1', count: 5000, entries }]);
  const [m] = sends[0].messages;
  expect(sends[0].compression).toBe(CompressionTypes.None);
  expect(m.headers).toEqual({ tag: 'app.web', key: 'k1', count: '5000', codec: 'gzip' });
  expect((m.value as Buffer).length).toBe(gzipSync(entries, { level: 9 }).length);
  expect(gunzipSync(m.value as Buffer).equals(entries)).toBe(true);
  await log.close();
});

test("gzip: a chunk that arrived gzipped is stored with the sender's bytes, not compressed again", async () => {
  const { client, sends } = fakeClient(1);
  const log = new KafkaLog(options(client));
  await log.start();
  const entries = Buffer.alloc(10_000, 7);
  const gzipped = gzipSync(entries, { level: 6 });
  await log.append([{ tag: 'app.web', key: 'k1', count: 1, entries, gzipped }, rec(2)]);
  const [a, b] = sends[0].messages;
  expect(a.value).toBe(gzipped);
  expect(a.headers).toMatchObject({ codec: 'gzip' });
  expect(gunzipSync(b.value as Buffer).equals(rec(2).entries)).toBe(true);
  await log.close();
});

test("gzip: a sender's several gzip members (Fluentd's compress gzip) are compressed again as one, so the value's trailer gives the entries' size", async () => {
  const { client, sends } = fakeClient(1);
  const log = new KafkaLog(options(client));
  await log.start();
  const entries = Buffer.alloc(10_000, 7);
  const gzipped = Buffer.concat([gzipSync(entries.subarray(0, 6000)), gzipSync(entries.subarray(6000))]);
  await log.append([{ tag: 'app.web', key: 'k1', count: 1, entries, gzipped }]);
  const [a] = sends[0].messages;
  expect(a.value).not.toBe(gzipped);
  expect(gunzipSync(a.value as Buffer).equals(entries)).toBe(true);
  expect(gzipInflatedSize(a.value as Buffer)).toBe(entries.length);
  await log.close();
});

test('several producers: as many requests in flight as producers, each producer one at a time, appends grouped while all are busy', async () => {
  let inFlight = 0;
  let most = 0;
  const busy = new Set<number>();
  const sends: number[] = [];
  const sender = new GroupedSender(
    [0, 1, 2].map((id) => async (messages) => {
      expect(busy.has(id)).toBe(false); // one request at a time per producer (the idempotence rule)
      busy.add(id);
      most = Math.max(most, ++inFlight);
      sends.push(messages.length);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      busy.delete(id);
    }),
    1 << 20,
  );
  await Promise.all(Array.from({ length: 30 }, () => sender.append([{ value: Buffer.alloc(10) }], 10)));
  expect(most).toBe(3);
  // The first three appends went out alone, one per producer; the other 27 waited and went out grouped.
  expect(sends.slice(0, 3)).toEqual([1, 1, 1]);
  expect(sends.length).toBeLessThanOrEqual(6);
  expect(sends.reduce((a, b) => a + b, 0)).toBe(30);
});
