import { randomBytes } from 'node:crypto';
/**
 * Kafka durable log through kafkajs (kept behind DurableLog so the client can
 * be swapped: kafkajs is in maintenance mode). Only APIs a Kafka 2.1 broker
 * has are used (Produce, Fetch, ListOffsets, OffsetFetch/Commit, group
 * membership, CreateTopics).
 *
 * - Topic created at start if missing, with an explicit partition count,
 *   replication factor and min.insync.replicas (never broker defaults), so it
 *   behaves the same on Kafka 2.x and newer and on MSK.
 * - Producers (kafka/producer.ts): `producers` idempotent ones, `acks: -1`
 *   (all in-sync replicas), one request in flight each; appends that arrive
 *   while all are busy are grouped into the next request. One Kafka message per chunk: value = entries, headers = tag, key
 *   and count; the message key is the dedupe key (or the tag).
 * - Compression (kafka/value-codec.ts): `gzip` (default, level 1) or
 *   `none`. Each message's value (a chunk's entries) is gzipped by itself on
 *   libuv's threadpool, and requests go out with kafkajs compression none;
 *   a `codec` header says the value is gzip. kafkajs compresses a whole
 *   request on the main thread inside an idempotent producer's per-broker
 *   lock, one request at a time: that bounded the append rate and took the
 *   main thread from ingest and egress (measured in docs/benchmarks.md,
 *   issue #16). A chunk that arrived gzipped (LogRecord.gzipped) keeps the
 *   sender's bytes and is not compressed again. Values without the header
 *   are plain entries, so topics written by earlier versions (kafkajs's
 *   per-request gzip, which kafkajs inflates on fetch) still read, mixed or
 *   not. LZ4, Snappy and ZSTD are not offered: zlib is in Node, the others
 *   need codec packages (native builds or pure-JS ports).
 * - Reader (kafka/reader.ts): a consumer group member feeding a bounded queue;
 *   see that file for how it follows kafkajs's fetch, resolve and commit rules.
 */
import { Codes, type Logger, RetryableError, silentLogger } from '@tributary/core';
import { type Admin, CompressionTypes, ConfigResourceTypes, Kafka, type Message, Partitioners, type Producer, logLevel } from 'kafkajs';
import { type DurableLog, LogErrorCode, type LogReader, type LogRecord } from './durable-log';
import { GroupedSender } from './kafka/producer';
import { KafkaReader } from './kafka/reader';
import { CODEC_HEADER, GZIP, gzipValue } from './kafka/value-codec';

/** The topic setting that makes the broker stamp each record with its append time (Kafka 0.10.1+). */
const TIMESTAMP_TYPE = 'message.timestamp.type';
/** Bytes counted per message beyond its value, key and headers (record framing, varints). */
const MESSAGE_OVERHEAD_BYTES = 32;

export interface KafkaLogOptions {
  brokers: string[];
  clientId: string;
  topic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  compression: 'none' | 'gzip';
  /** zlib level of the gzip codec (1 fastest … 9 smallest). */
  gzipLevel: number;
  partitionBy: 'chunk' | 'tag';
  ssl: boolean;
  requestTimeoutMs: number;
  /** Most message bytes (values as stored) grouped into one produce request. */
  maxRequestBytes: number;
  /** Idempotent producers, each with one request in flight: how many produce requests may be in flight at once. */
  producers: number;
  /** Most bytes a reader holds fetched and not yet polled. */
  readerQueueBytes: number;
  logger?: Logger;
  /** The kafkajs client (tests inject a fake); built from the options above when absent. */
  client?: Pick<Kafka, 'admin' | 'producer' | 'consumer'>;
}

export class KafkaLog implements DurableLog {
  readonly kind = 'kafka' as const;
  private readonly kafka: Pick<Kafka, 'admin' | 'producer' | 'consumer'>;
  private readonly logger: Logger;
  private producers: Producer[] = [];
  private admin: Admin | null = null;
  private sender: GroupedSender | null = null;
  private failure: string | null = 'not started';
  private readonly readers = new Set<KafkaReader>();

  constructor(private readonly options: KafkaLogOptions) {
    this.logger = options.logger ?? silentLogger;
    this.kafka =
      options.client ??
      new Kafka({
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
    this.admin = admin;
    const existing = await admin.listTopics();
    if (!existing.includes(this.options.topic)) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: this.options.topic,
            numPartitions: this.options.partitions,
            replicationFactor: this.options.replicationFactor,
            configEntries: [
              { name: 'min.insync.replicas', value: String(this.options.minInsyncReplicas) },
              // Every reader of a partition then sees the same time on each record: egress cuts objects on age in it.
              { name: TIMESTAMP_TYPE, value: 'LogAppendTime' },
            ],
          },
        ],
      });
    } else {
      await this.checkTimestampType(admin);
    }
    for (let i = 0; i < this.options.producers; i++) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      this.producers.push(producer);
      await producer.connect();
    }
    const { topic, requestTimeoutMs } = this.options;
    this.sender = new GroupedSender(
      this.producers.map((producer) => async (messages) => {
        await producer.send({ topic, acks: -1, timeout: requestTimeoutMs, compression: CompressionTypes.None, messages });
      }),
      this.options.maxRequestBytes,
    );
    this.failure = null;
  }

  /** Says (once, at start) when an existing topic is not stamped with the broker's append time. */
  private async checkTimestampType(admin: Admin): Promise<void> {
    const { topic } = this.options;
    let value: string | undefined;
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [TIMESTAMP_TYPE] }],
      });
      value = resources[0]?.configEntries.find((e) => e.configName === TIMESTAMP_TYPE)?.configValue;
    } catch (err) {
      value = `unknown (${(err as Error).message})`;
    }
    if (value === 'LogAppendTime') return;
    this.logger.warn(
      { code: Codes.TRB_LOG_TIMESTAMP_TYPE, topic, value },
      `Kafka topic ${topic} has ${TIMESTAMP_TYPE} ${value}, not LogAppendTime: egress cuts objects on age by the producers' clocks, so a replay after a crash or rebalance may cut an object differently and write some events twice. Set it with kafka-configs --alter --entity-type topics --entity-name ${topic} --add-config ${TIMESTAMP_TYPE}=LogAppendTime.`,
    );
  }

  unavailable(): string | null {
    return this.failure;
  }

  /** Not bounded here: the topic's retention is the buffer (see DurableLog). */
  backlogBytes(): number {
    return 0;
  }

  waitForCommit(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms).unref());
  }

  async append(records: LogRecord[]): Promise<void> {
    if (!this.sender) throw new RetryableError(LogErrorCode.Closed, 'The Kafka log is not started.');
    if (records.length === 0) return;
    const { partitionBy, compression, gzipLevel } = this.options;
    let values: Buffer[];
    try {
      // Each on the threadpool, all at once; the main thread only waits.
      values =
        compression === 'gzip'
          ? await Promise.all(records.map((r) => gzipValue(r.entries, gzipLevel, r.gzipped)))
          : records.map((r) => r.entries);
    } catch (err) {
      throw new RetryableError(
        LogErrorCode.Append,
        `Compressing chunks for Kafka topic ${this.options.topic} failed: ${(err as Error).message}.`,
        err,
      );
    }
    let bytes = 0;
    const messages: Message[] = records.map((r, i) => {
      const key = partitionBy === 'tag' ? r.tag : r.key;
      const count = String(r.count);
      const value = values[i];
      bytes += value.length + key.length + 2 * r.key.length + r.tag.length + count.length + MESSAGE_OVERHEAD_BYTES;
      const headers: Record<string, string> = { tag: r.tag, key: r.key, count };
      if (compression === 'gzip') headers[CODEC_HEADER] = GZIP;
      return { key, value, headers };
    });
    try {
      await this.sender.append(messages, bytes);
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
    const admin = this.admin;
    if (!admin) throw new RetryableError(LogErrorCode.Closed, 'The Kafka log is not started.');
    const { topic } = this.options;
    const consumer = this.kafka.consumer({ groupId: group, allowAutoTopicCreation: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const reader = new KafkaReader({
      consumer,
      topic,
      maxQueuedBytes: this.options.readerQueueBytes,
      logger: this.logger,
      partitionEnds: async () => {
        const [ends, offsets] = await Promise.all([
          admin.fetchTopicOffsets(topic),
          admin.fetchOffsets({ groupId: group, topics: [topic] }),
        ]);
        const committed = new Map((offsets.find((o) => o.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        return ends.map((e) => ({
          partition: e.partition,
          committed: committed.get(e.partition) ?? -1,
          low: Number(e.low),
          high: Number(e.high),
        }));
      },
    });
    await reader.start();
    this.readers.add(reader);
    return reader;
  }

  /**
   * Reads the dedupe keys (the `key` header) of the last records of every
   * partition, `max` in all, spread evenly: a consumer of a throwaway group
   * seeks each partition to its tail and stops at the end it saw, within
   * `requestTimeoutMs` (then rejects: the caller falls back to what it has).
   * The group commits nothing and is deleted after.
   */
  async recentKeys(max: number): Promise<string[]> {
    const admin = this.admin;
    if (!admin) throw new RetryableError(LogErrorCode.Closed, 'The Kafka log is not started.');
    const { topic, requestTimeoutMs } = this.options;
    const ends = await admin.fetchTopicOffsets(topic);
    const per = Math.ceil(max / Math.max(1, ends.length));
    const want = new Map(
      ends
        .map((e) => ({ partition: e.partition, from: Math.max(Number(e.low), Number(e.high) - per), to: Number(e.high) }))
        .filter((w) => w.to > w.from)
        .map((w) => [w.partition, w]),
    );
    if (want.size === 0) return [];
    const keys = new Map<number, string[]>([...want.keys()].map((p) => [p, []]));
    const groupId = `${this.options.clientId}-tail-${randomBytes(6).toString('hex')}`;
    const consumer = this.kafka.consumer({ groupId, allowAutoTopicCreation: false });
    let timer: NodeJS.Timeout | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const left = new Set(want.keys());
        timer = setTimeout(
          () => reject(new Error(`reading the tail of ${topic} took longer than ${requestTimeoutMs} ms`)),
          requestTimeoutMs,
        );
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const w = want.get(batch.partition);
              if (!w || !left.has(batch.partition)) return;
              for (const m of batch.messages) {
                const offset = Number(m.offset);
                if (offset < w.from || offset >= w.to) continue;
                const key = m.headers?.key?.toString();
                if (key) keys.get(batch.partition)?.push(key);
                if (offset === w.to - 1) left.delete(batch.partition);
              }
              if (left.size === 0) resolve();
            },
          })
          .then(() => {
            try {
              for (const w of want.values()) consumer.seek({ topic, partition: w.partition, offset: String(w.from) });
            } catch (err) {
              reject(err); // the read fails; the caller rebuilds from what it has
            }
          }, reject);
      });
    } finally {
      clearTimeout(timer);
      // The keys are read (or the read failed): a clean-up that fails loses nothing, but is said.
      await consumer.disconnect().catch((err: Error) => this.tailCleanupFailed(`disconnecting its consumer (group ${groupId})`, err));
      await admin.deleteGroups?.([groupId]).catch((err: Error) => this.tailCleanupFailed(`deleting its group ${groupId}`, err));
    }
    return [...keys.values()].flat().slice(-max);
  }

  private tailCleanupFailed(what: string, err: Error): void {
    this.logger.warn(
      { code: Codes.TRB_LOG_CLEANUP, err: err.message },
      `Reading the tail of Kafka topic ${this.options.topic} left a throwaway consumer behind: ${what} failed (${err.message}); Kafka expires its group.`,
    );
  }

  async close(): Promise<void> {
    for (const r of this.readers) await r.close();
    this.readers.clear();
    for (const p of this.producers) await p.disconnect();
    await this.admin?.disconnect();
    this.producers = [];
    this.admin = null;
    this.sender = null;
    this.failure = 'closed';
  }
}
