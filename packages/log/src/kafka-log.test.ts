import { Writable } from 'node:stream';
import { createLogger } from '@tributary/core';
import { KafkaLog, type KafkaLogOptions } from './kafka-log';
import { FakeCluster, fakeKafkaClient } from './kafka/__fixtures__/fake-consumer';

test('recentKeys: a throwaway consumer that fails to disconnect or to delete its group still gives the keys, and each failure is a coded warn line', async () => {
  const topic = 'trb-tail';
  const cluster = new FakeCluster(1);
  for (let i = 0; i < 5; i++) cluster.produce(0, 'app', `k${i}`);
  const fake = fakeKafkaClient(cluster, topic);
  const client = {
    admin: () => Object.assign(fake.admin(), { deleteGroups: async () => Promise.reject(new Error('group delete refused')) }),
    producer: fake.producer,
    consumer: (c: { groupId: string }) => {
      const consumer = fake.consumer(c);
      const disconnect = consumer.disconnect.bind(consumer);
      return Object.assign(consumer, {
        disconnect: async () => {
          await disconnect();
          throw new Error('disconnect timed out');
        },
      });
    },
  };
  const lines: Array<{ level: number; code?: string; msg: string }> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const log = new KafkaLog({
    brokers: ['127.0.0.1:1'],
    clientId: 'tributary-tail',
    topic,
    partitions: 1,
    replicationFactor: 1,
    minInsyncReplicas: 1,
    compression: 'none',
    gzipLevel: 1,
    partitionBy: 'chunk',
    ssl: false,
    requestTimeoutMs: 5_000,
    maxRequestBytes: 983_040,
    producers: 2,
    readerQueueBytes: 1 << 20,
    logger: createLogger('test', 'info', sink),
    client: client as unknown as KafkaLogOptions['client'],
  });
  await log.start();
  try {
    expect(await log.recentKeys(3)).toEqual(['k2', 'k3', 'k4']);
    const warned = lines.filter((l) => l.level === 40 && l.code === 'TRB_LOG_CLEANUP').map((l) => l.msg);
    expect(warned).toHaveLength(2);
    expect(warned[0]).toMatch(/disconnecting its consumer .* failed \(disconnect timed out\)/);
    expect(warned[1]).toMatch(/deleting its group .* failed \(group delete refused\)/);
  } finally {
    await log.close();
  }
});
