import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip, unzip } from 'node:zlib';
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
 * - Compression: `gzip` (default, level 1) or `none`, the codecs kafkajs
 *   ships. kafkajs's own gzip codec uses zlib's default level 6, and since an
 *   idempotent producer compresses inside its per-broker lock, one request at
 *   a time, the level bounds the append rate: on this 2-core machine a
 *   960 KiB request of ~130-byte JSON-like events took 10.6 ms at level 6
 *   (93 MB/s, ratio 7.4) and 2.6 ms at level 1 (377 MB/s, ratio 5.6). The log
 *   therefore registers a gzip codec with the configured level in kafkajs's
 *   codec registry, which is process-wide: the last KafkaLog started sets it
 *   (one per process in practice). LZ4,
 *   Snappy and ZSTD need codec packages (native builds or pure-JS ports)
 *   whose framing against a real broker could not be checked here, and ZSTD
 *   needs Produce v7 / Fetch v10 on the wire; none is offered. Entries are
 *   never compressed twice: the forward decoder inflates a
 *   CompressedPackedForward chunk at the door, so a LogRecord's entries are
 *   always plain msgpack and Kafka's compression is the only one. (Keeping a
 *   sender's gzip bytes as they came would need LogRecord to carry them with a
 *   codec flag, and such records to go in their own request with
 *   compression none, since kafkajs compresses per request.)
 * - Reader (kafka/reader.ts): a consumer group member feeding a bounded queue;
 *   see that file for how it follows kafkajs's fetch, resolve and commit rules.
 */
import { Codes, type Logger, RetryableError, silentLogger } from '@tributary/core';
import {
  type Admin,
  CompressionCodecs,
  CompressionTypes,
  ConfigResourceTypes,
  Kafka,
  type Message,
  Partitioners,
  type Producer,
  logLevel,
} from 'kafkajs';
import { type DurableLog, LogErrorCode, type LogReader, type LogRecord } from './durable-log';
import { GroupedSender } from './kafka/producer';
import { KafkaReader } from './kafka/reader';

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);

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
  /** Most message bytes (before compression) grouped into one produce request. */
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
    const level = this.options.gzipLevel;
    CompressionCodecs[CompressionTypes.GZIP] = () => ({
      compress: (encoder: { buffer: Buffer }) => gzipAsync(encoder.buffer, { level }),
      decompress: (buffer: Buffer) => unzipAsync(buffer),
    });
    const compression = this.options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    this.sender = new GroupedSender(
      this.producers.map((producer) => async (messages) => {
        await producer.send({ topic, acks: -1, timeout: requestTimeoutMs, compression, messages });
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
    let bytes = 0;
    const messages: Message[] = records.map((r) => {
      const key = this.options.partitionBy === 'tag' ? r.tag : r.key;
      const count = String(r.count);
      bytes += r.entries.length + key.length + 2 * r.key.length + r.tag.length + count.length + MESSAGE_OVERHEAD_BYTES;
      return { key, value: r.entries, headers: { tag: r.tag, key: r.key, count } };
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
