/**
 * kafkajs 2.2.4 (maintenance mode) gave `setTimeout` a negative delay each
 * time its request queue emptied (kafkajs #1751): Node took it as 1 ms, and
 * Node 24 prints a TimeoutNegativeWarning for it at every connect.
 * patches/kafkajs@2.2.4.patch clamps it to 1 ms (as kafkajs PR #1755), the
 * delay Node used anyway. On the real broker, skipped without one (test/kafka-broker.js).
 */
import { Kafka, logLevel } from 'kafkajs';

const maybe = process.env.KAFKA_BROKERS ? test : test.skip;

maybe(
  'kafkajs schedules no timer with a negative delay while it connects, produces, reads metadata and disconnects',
  async () => {
    const delays: unknown[] = [];
    const spy = jest.spyOn(global, 'setTimeout');
    const kafka = new Kafka({
      clientId: 'trb-timers-test',
      brokers: (process.env.KAFKA_BROKERS as string).split(','),
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const topic = `trb-timers-${process.pid}-${Date.now()}`;
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ value: 'x' }] });
      expect((await admin.fetchTopicOffsets(topic))[0].high).toBe('1');
    } finally {
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
      for (const call of spy.mock.calls) delays.push(call[1]);
      spy.mockRestore();
    }
    expect(delays.length).toBeGreaterThan(0);
    expect(delays.filter((d) => typeof d === 'number' && d < 0)).toEqual([]);
  },
  60_000,
);
