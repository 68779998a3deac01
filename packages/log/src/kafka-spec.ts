/** `log.type: kafka`: a Kafka cluster (Amazon MSK) shared by every aggregator. */
import type { FromSchema } from 'json-schema-to-ts';
import { KafkaLog } from './kafka-log';
import type { LogSpec } from './spec';

export const kafkaLogSchema = {
  type: 'object',
  description:
    'A topic on a Kafka cluster (Amazon MSK), shared by every aggregator; an ack means all in-sync replicas have the chunk. Ingest applies no backlog bound: the topic is the buffer.',
  additionalProperties: false,
  required: ['type', 'kafka'],
  properties: {
    type: { const: 'kafka' },
    kafka: {
      type: 'object',
      description: 'Kafka (MSK) connection and topic.',
      additionalProperties: false,
      required: ['brokers'],
      properties: {
        brokers: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'host:port bootstrap brokers.' },
        topic: { type: 'string', default: 'tributary-chunks', description: 'Topic holding one message per chunk.' },
        partitions: { type: 'integer', minimum: 1, default: 12, description: 'Partitions when the topic is created.' },
        replication_factor: {
          type: 'integer',
          minimum: 1,
          default: 3,
          description: 'Explicit replication factor when the topic is created.',
        },
        min_insync_replicas: { type: 'integer', minimum: 1, default: 2 },
        compression: {
          enum: ['none', 'gzip'],
          default: 'gzip',
          description:
            "gzip: each chunk's entries are stored gzipped (compressed off the main thread; a chunk that arrived gzipped keeps the sender's bytes); none: stored as they are. Either way a topic written with the other, or by an earlier version, still reads.",
        },
        gzip_level: {
          type: 'integer',
          minimum: 1,
          maximum: 9,
          default: 1,
          description:
            'zlib level of the gzip the log applies to chunks that arrive uncompressed (level 1 about 4x faster than 6, output about 30% larger).',
        },
        partition_by: {
          enum: ['chunk', 'tag'],
          default: 'chunk',
          description: 'Message key: the chunk (spread load) or the tag (order per tag).',
        },
        ssl: { type: 'boolean', default: false, description: 'TLS to the brokers (MSK TLS listeners).' },
        client_id: { type: 'string', default: 'tributary', description: 'Kafka client id.' },
        request_timeout_ms: { type: 'integer', minimum: 100, default: 30000 },
        max_request_bytes: {
          type: 'integer',
          minimum: 1024,
          default: 983040,
          description:
            "Most message bytes (values as stored, compressed with gzip) that concurrent appends group into one produce request; a bigger chunk goes alone. Keep it under the topic's max.message.bytes (broker default 1000012).",
        },
        producers: {
          type: 'integer',
          minimum: 1,
          maximum: 16,
          default: 3,
          description:
            'Idempotent producers per node, each with one produce request in flight (the idempotence rule): how many requests an aggregator has in flight at once. Appends that arrive while all are busy go in the next request together. With one, appends wait a broker round trip per request.',
        },
        reader_queue_bytes: {
          type: 'integer',
          minimum: 65536,
          default: 16777216,
          description:
            'Most bytes of fetched records (entries inflated) an egress reader holds before fetching pauses (with heartbeats). Two of egress’s polls (8 MiB each) by default.',
        },
      },
    },
  },
} as const;

export type KafkaLogConfig = FromSchema<typeof kafkaLogSchema>;

export const kafkaLog: LogSpec<KafkaLogConfig> = {
  type: 'kafka',
  schema: kafkaLogSchema,
  create({ kafka: k }, ctx) {
    const log = new KafkaLog({
      brokers: [...k.brokers],
      clientId: k.client_id,
      topic: k.topic,
      partitions: k.partitions,
      replicationFactor: k.replication_factor,
      minInsyncReplicas: k.min_insync_replicas,
      compression: k.compression,
      gzipLevel: k.gzip_level,
      partitionBy: k.partition_by,
      ssl: k.ssl,
      requestTimeoutMs: k.request_timeout_ms,
      maxRequestBytes: k.max_request_bytes,
      producers: k.producers,
      readerQueueBytes: k.reader_queue_bytes,
      logger: ctx.logger,
      client: ctx.kafkaClient,
    });
    return { log, maxBacklogBytes: 0 };
  },
};
