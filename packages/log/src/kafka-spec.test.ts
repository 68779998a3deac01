/**
 * The kafka spec's create, on an injected client that records what KafkaLog
 * asks of it (no broker): the config's snake_case keys reach the topic
 * creation and every produce request.
 */
import { silentLogger, validateConfig } from '@tributary/core';
import { CompressionTypes } from 'kafkajs';
import { kafkaLog } from './kafka-spec';
import { logConfigSpec } from './registry';

function fakeClient() {
  const calls = { createTopics: [] as unknown[], producer: [] as unknown[], send: [] as Array<Record<string, unknown>> };
  const client = {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => [] as string[],
      createTopics: async (req: unknown) => {
        calls.createTopics.push(req);
        return true;
      },
    }),
    producer: (opts: unknown) => {
      calls.producer.push(opts);
      return {
        connect: async () => {},
        disconnect: async () => {},
        send: async (req: Record<string, unknown>) => {
          calls.send.push(req);
          return [];
        },
      };
    },
    consumer: () => {
      throw new Error('no consumer in this test');
    },
  };
  return { client, calls };
}

test("the kafka spec's create maps the config to the topic it creates and the produce requests it sends", async () => {
  const config = validateConfig(logConfigSpec, {
    log: {
      type: 'kafka',
      kafka: {
        brokers: ['b1:9092'],
        topic: 'chunks-x',
        partitions: 7,
        replication_factor: 2,
        min_insync_replicas: 1,
        partition_by: 'tag',
        request_timeout_ms: 4321,
      },
    },
  }).log;
  if (config.type !== 'kafka') throw new Error('expected the kafka log');
  const { client, calls } = fakeClient();
  const { log, maxBacklogBytes } = kafkaLog.create(config, { logger: silentLogger, kafkaClient: client as never });
  expect(log.kind).toBe('kafka');
  expect(maxBacklogBytes).toBe(0);
  expect(log.recoveredKeys).toBeUndefined(); // a shared log: a node cannot tell its own records apart
  await log.start();
  await log.append([{ tag: 'app.web', key: 'chunk-1', count: 1, entries: Buffer.from([0x92]) }]);
  await log.close();
  expect(calls.createTopics).toEqual([
    {
      waitForLeaders: true,
      topics: [
        {
          topic: 'chunks-x',
          numPartitions: 7,
          replicationFactor: 2,
          configEntries: [
            { name: 'min.insync.replicas', value: '1' },
            { name: 'message.timestamp.type', value: 'LogAppendTime' },
          ],
        },
      ],
    },
  ]);
  expect(calls.send).toHaveLength(1);
  // gzip (the default): the value is compressed by the log, the request is not
  expect(calls.send[0]).toMatchObject({ topic: 'chunks-x', acks: -1, timeout: 4321, compression: CompressionTypes.None });
  // partition_by tag: the message key is the tag, the chunk key travels in a header
  expect(calls.send[0].messages).toEqual([
    expect.objectContaining({ key: 'app.web', headers: expect.objectContaining({ key: 'chunk-1', tag: 'app.web', codec: 'gzip' }) }),
  ]);
});
