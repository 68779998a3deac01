/**
 * Kafka durable log through kafkajs (kept behind DurableLog so the client can
 * be swapped: kafkajs is in maintenance mode).
 *
 * - Topic created at start if missing, with an explicit partition count,
 *   replication factor and min.insync.replicas (never broker defaults), so it
 *   behaves the same on Kafka 2.x and newer and on MSK.
 * - Producer: idempotent, `acks: -1` (all in-sync replicas), optional
 *   compression. One Kafka message per chunk: value = entries, headers = tag,
 *   key and count; the message key is the dedupe key (or the tag).
 * - Reader: a consumer group with auto-commit off; a fetched batch is held
 *   until egress commits it, so the group's offset only moves past records
 *   every sink confirmed.
 */
import { RetryableError } from '@tributary/core';
import { CompressionTypes, type Consumer, Kafka, type Producer, logLevel } from 'kafkajs';
import { type DurableLog, LogErrorCode, type LogReader, type LogRecord, type StoredRecord } from './durable-log';

export interface KafkaLogOptions {
  brokers: string[];
  clientId: string;
  topic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  compression: 'none' | 'gzip';
  partitionBy: 'chunk' | 'tag';
  ssl: boolean;
  requestTimeoutMs: number;
}

export class KafkaLog implements DurableLog {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  private failure: string | null = 'not started';
  private readonly readers = new Set<KafkaReader>();

  constructor(private readonly options: KafkaLogOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ssl: options.ssl,
      requestTimeout: options.requestTimeoutMs,
      logLevel: logLevel.WARN,
    });
  }

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = await admin.listTopics();
      if (!existing.includes(this.options.topic)) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic: this.options.topic,
              numPartitions: this.options.partitions,
              replicationFactor: this.options.replicationFactor,
              configEntries: [{ name: 'min.insync.replicas', value: String(this.options.minInsyncReplicas) }],
            },
          ],
        });
      }
    } finally {
      await admin.disconnect();
    }
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.failure = null;
  }

  unavailable(): string | null {
    return this.failure;
  }

  async append(records: LogRecord[]): Promise<void> {
    if (!this.producer) throw new RetryableError(LogErrorCode.Closed, 'The Kafka log is not started.');
    try {
      await this.producer.send({
        topic: this.options.topic,
        acks: -1,
        timeout: this.options.requestTimeoutMs,
        compression: this.options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: records.map((r) => ({
          key: this.options.partitionBy === 'tag' ? r.tag : r.key,
          value: r.entries,
          headers: { tag: r.tag, key: r.key, count: String(r.count) },
        })),
      });
      this.failure = null;
    } catch (err) {
      this.failure = `produce failed: ${(err as Error).message}`;
      throw new RetryableError(
        LogErrorCode.Append,
        `Appending to Kafka topic ${this.options.topic} failed: ${(err as Error).message}.`,
        err,
      );
    }
  }

  async reader(group: string): Promise<LogReader> {
    const consumer = this.kafka.consumer({ groupId: group, allowAutoTopicCreation: false });
    await consumer.connect();
    await consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    const reader = new KafkaReader(consumer, this.options.topic);
    await reader.start();
    this.readers.add(reader);
    return reader;
  }

  async close(): Promise<void> {
    for (const r of this.readers) await r.close();
    await this.producer?.disconnect();
    this.producer = null;
    this.failure = 'closed';
  }
}

class KafkaReader implements LogReader {
  /** Fetched batches not yet handed to poll(). */
  private held: StoredRecord[][] = [];
  private waiters: Array<() => void> = [];
  private readonly uncommitted = new Map<string, () => void>();

  constructor(
    private readonly consumer: Consumer,
    private readonly topic: string,
  ) {}

  async start(): Promise<void> {
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, heartbeat, isRunning }) => {
        const records: StoredRecord[] = batch.messages.map((m) => ({
          tag: m.headers?.tag?.toString() ?? '',
          key: m.headers?.key?.toString() ?? '',
          count: Number(m.headers?.count?.toString() ?? '0'),
          entries: m.value ?? Buffer.alloc(0),
          partition: batch.partition,
          offset: Number(m.offset),
        }));
        if (records.length === 0) return;
        // Hold the batch until egress committed it: the group's offset never passes unconfirmed records.
        await new Promise<void>((resolve) => {
          this.held.push(records);
          for (const w of this.waiters.splice(0)) w();
          const beat = setInterval(() => {
            if (!isRunning()) {
              clearInterval(beat);
              resolve();
            } else heartbeat().catch(() => {});
          }, 3000);
          this.uncommitted.set(`${batch.partition}:${records[records.length - 1].offset}`, () => {
            clearInterval(beat);
            resolve();
          });
        });
      },
    });
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<StoredRecord[]> {
    if (this.held.length === 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, maxWaitMs);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out: StoredRecord[] = [];
    while (this.held.length && out.length < maxRecords) {
      out.push(...(this.held.shift() as StoredRecord[]));
    }
    return out;
  }

  caughtUp(): boolean {
    return this.held.length === 0;
  }

  async commit(records: StoredRecord[]): Promise<void> {
    const last = new Map<number, number>();
    for (const r of records) last.set(r.partition, Math.max(last.get(r.partition) ?? -1, r.offset));
    await this.consumer.commitOffsets(
      [...last].map(([partition, offset]) => ({ topic: this.topic, partition, offset: String(offset + 1) })),
    );
    for (const r of records) {
      const k = `${r.partition}:${r.offset}`;
      const release = this.uncommitted.get(k);
      if (release) {
        this.uncommitted.delete(k);
        release();
      }
    }
  }

  async close(): Promise<void> {
    for (const release of this.uncommitted.values()) release();
    this.uncommitted.clear();
    await this.consumer.disconnect();
  }
}
