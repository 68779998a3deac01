/**
 * Writes messages straight into a real broker's topic with kafkajs, as no
 * current KafkaLog would: the value format of earlier versions (plain
 * entries, no codec header, the whole produce request gzipped by kafkajs)
 * and values that do not decode. For the real-broker tests under test/
 * (kafkajs is this package's dependency, not the root's).
 */
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';

export interface RawMessage {
  /** The message key (a KafkaLog with partition_by chunk uses the chunk key). */
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

function kafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: 'trb-test-raw', brokers, logLevel: logLevel.NOTHING });
}

/** Creates `topic` with one partition, stamped with the broker's append time as KafkaLog creates its topic. */
export async function createTopic(brokers: string[], topic: string): Promise<void> {
  const admin = kafka(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

/** Sends `messages` to partition 0 in one produce request, acks=all; with `requestGzip` kafkajs gzips the whole request (CompressionTypes.GZIP). */
export async function produceRaw(brokers: string[], topic: string, messages: RawMessage[], requestGzip: boolean): Promise<void> {
  const producer = kafka(brokers).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      compression: requestGzip ? CompressionTypes.GZIP : CompressionTypes.None,
      messages: messages.map((m) => ({ ...m, partition: 0 })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** Partition 0's end offset, and the offset a group committed there (-1 when none), read over one admin connection. */
export interface OffsetsReader {
  read(): Promise<{ end: number; committed: number }>;
  /** Disconnects the admin client; call it in a `finally`. */
  close(): Promise<void>;
}

/** An OffsetsReader for `group` on `topic`: one admin client, connected here, for any number of reads. */
export async function openOffsets(brokers: string[], topic: string, group: string): Promise<OffsetsReader> {
  const admin = kafka(brokers).admin();
  await admin.connect();
  const at = (list: Array<{ partition: number; offset: string }>) => Number(list.find((p) => p.partition === 0)?.offset ?? -1);
  return {
    async read() {
      const [ends, [committed]] = await Promise.all([
        admin.fetchTopicOffsets(topic),
        admin.fetchOffsets({ groupId: group, topics: [topic] }),
      ]);
      return { end: at(ends), committed: at(committed.partitions) };
    },
    close: () => admin.disconnect(),
  };
}
