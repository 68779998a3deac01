/**
 * Aggregator configuration: the one schema, defaults and descriptions in it
 * (the configuration reference is generated from it). Inputs take their
 * schemas from @tributary/inputs; sink types come from the sink registry.
 */
import type { ConfigSchema } from '@tributary/core';
import { type ForwardInputConfig, type HttpInputConfig, forwardInputSchema, httpInputSchema } from '@tributary/inputs';
import { type SinkConfig, type SinkRegistry, sinkItemSchema, sinkRegistry } from './sinks/registry';

export const aggregatorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    node_id: {
      type: 'string',
      minLength: 1,
      description: "Owner name recorded in dedupe claims; must stay the same across restarts (default: this machine's hostname).",
    },
    forward: {
      ...forwardInputSchema,
      properties: {
        ...forwardInputSchema.properties,
        bind: { type: 'string', default: '0.0.0.0', description: 'Address to listen on.' },
        max_pending_batches: {
          ...forwardInputSchema.properties.max_pending_batches,
          default: 8,
          description: 'Reads per connection waiting for dedupe and the log before the socket is paused (deep enough to overlap fsyncs).',
        },
        max_pending_bytes: {
          ...forwardInputSchema.properties.max_pending_bytes,
          default: 67108864,
        },
      },
    },
    http: {
      ...httpInputSchema,
      properties: { ...httpInputSchema.properties, enabled: { type: 'boolean', default: false, description: 'Serve the HTTP input.' } },
    },
    dedupe: {
      type: 'object',
      description: 'Cross-node dedupe of resent chunks.',
      additionalProperties: false,
      default: {},
      properties: {
        type: {
          enum: ['embedded', 'redis', 'none'],
          default: 'embedded',
          description: 'embedded: single node, rebuilt from the log at start; redis: across nodes; none: off.',
        },
        redis: {
          type: 'object',
          description: 'Redis (ElastiCache) connection for dedupe.type redis.',
          additionalProperties: false,
          properties: {
            url: { type: 'string', description: 'redis://host:port (standalone).' },
            cluster_nodes: {
              type: 'array',
              items: { type: 'string' },
              description: 'host:port seeds for Redis Cluster (ElastiCache cluster mode).',
            },
            key_prefix: { type: 'string', default: 'trb:dd:', description: 'Prefix of every dedupe key.' },
            command_timeout_ms: {
              type: 'integer',
              minimum: 10,
              default: 1000,
              description: 'A Redis call slower than this counts as Redis unavailable.',
            },
          },
        },
        claim_ttl_ms: {
          type: 'integer',
          minimum: 100,
          default: 30000,
          description: 'How long a claim holds before another node may take the chunk.',
        },
        done_ttl_ms: {
          type: 'integer',
          minimum: 1000,
          default: 259200000,
          description: 'How long a written chunk is remembered (default 72 h, a forwarder retry horizon).',
        },
        claim_wait_ms: {
          type: 'integer',
          minimum: 0,
          default: 5000,
          description: 'How long a resend waits for another node holding the claim before it gets no ack.',
        },
        on_unavailable: {
          enum: ['fail_open', 'fail_closed'],
          default: 'fail_open',
          description: 'Redis down: keep accepting (at-least-once) or stop acking.',
        },
        max_entries: { type: 'integer', minimum: 1000, default: 2000000, description: 'Embedded store: marks kept in memory.' },
        rebuild_wait_ms: {
          type: 'integer',
          minimum: 0,
          default: 10000,
          description:
            'Redis store: after Redis lost its memory, how long a node waits for its peers to re-mark the chunks in their logs before it trusts the marks again (fail_closed refuses acks meanwhile).',
        },
        rebuild_max_keys: {
          type: 'integer',
          minimum: 1000,
          default: 200000,
          description: "Redis store: most of this node's recently logged chunk keys kept in memory to re-mark after Redis lost its memory.",
        },
      },
    },
    log: {
      type: 'object',
      description: 'The durable log between ingest and egress.',
      additionalProperties: false,
      default: {},
      properties: {
        type: {
          enum: ['embedded', 'kafka'],
          default: 'embedded',
          description: 'embedded: disk log on this node; kafka: a Kafka cluster (MSK).',
        },
        path: { type: 'string', default: './data/aggregator-log', description: 'Embedded log directory.' },
        segment_bytes: { type: 'integer', minimum: 1024, default: 67108864, description: 'Embedded log segment size.' },
        retention_bytes: {
          type: 'integer',
          minimum: 1024,
          default: 10737418240,
          description: 'Embedded log: consumed segments beyond this size are deleted.',
        },
        retention_ms: {
          type: 'integer',
          minimum: 1000,
          default: 259200000,
          description: 'Embedded log: consumed segments older than this are deleted.',
        },
        max_backlog_bytes: {
          type: 'integer',
          minimum: 0,
          default: 268435456,
          description:
            'Embedded log: while egress is this many bytes behind, ingest waits (senders are slowed by TCP) instead of the log growing without bound; a batch that waits over 30 s is refused unacked and resent. 0: no bound. Kafka: not applied (the topic is the buffer).',
        },
        kafka: {
          type: 'object',
          description: 'Kafka (MSK) connection for log.type kafka.',
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
                'Compression of produce requests (the codecs kafkajs ships). Chunks are stored uncompressed in the log, so this is their only compression.',
            },
            gzip_level: {
              type: 'integer',
              minimum: 1,
              maximum: 9,
              default: 1,
              description:
                'zlib level of gzip compression. Requests are compressed one at a time, so the level bounds the append rate (measured: level 1 about 4x faster than 6, output about 30% larger).',
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
                "Most chunk bytes (before compression) that concurrent appends group into one produce request; a bigger chunk goes alone. Keep it under the topic's max.message.bytes (broker default 1000012).",
            },
            reader_queue_bytes: {
              type: 'integer',
              minimum: 65536,
              default: 33554432,
              description: 'Most bytes of fetched records an egress reader holds before fetching pauses (with heartbeats).',
            },
          },
        },
      },
    },
    egress: {
      type: 'object',
      description: 'Workers that read the log and deliver to sinks.',
      additionalProperties: false,
      default: {},
      properties: {
        group: { type: 'string', default: 'tributary-egress', description: 'Consumer group of the egress workers.' },
        batch_records: { type: 'integer', minimum: 1, default: 256, description: 'Most log records (chunks) one poll of the log reads.' },
        max_wait_ms: {
          type: 'integer',
          minimum: 1,
          default: 500,
          description: 'How long a poll waits for the log when it has nothing new.',
        },
        encoder_threads: {
          anyOf: [{ const: 'auto' }, { type: 'integer', minimum: 0, maximum: 16 }],
          default: 'auto',
          description:
            'Worker threads that encode NDJSON and gzip (auto: one per core beyond the first, at most 4; 0: on the main thread).',
        },
        objects: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description:
            'How egress gathers records into objects (one per tag and hour), across polls. Cuts depend only on the log, so a replay rewrites the same keys.',
          properties: {
            bytes: {
              type: 'integer',
              minimum: 1024,
              default: 33554432,
              description: 'Cut after this many bytes of log entries (msgpack) per partition; the gzip object is a fraction of it.',
            },
            age_ms: {
              type: 'integer',
              minimum: 0,
              default: 2000,
              description:
                "Cut a smaller object once it is this old and egress has read its partition to the end: the latency of a quiet stream. Raise it (60000-300000, like Firehose's buffering interval) to make fewer, larger S3 objects.",
            },
            max_tags: {
              type: 'integer',
              minimum: 1,
              default: 128,
              description: 'Most tags one cut may hold (each tag and hour is one open object).',
            },
          },
        },
        retry_initial_ms: { type: 'integer', minimum: 1, default: 200 },
        retry_max_ms: { type: 'integer', minimum: 1, default: 30000 },
        routes: {
          type: 'array',
          default: [{ match: '**', sinks: ['file'] }],
          description: 'First matching route wins; a route may fan out to several sinks.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['match', 'sinks'],
            properties: {
              match: { type: 'string', description: 'Fluentd tag pattern (*, **, {a,b}).' },
              sinks: { type: 'array', minItems: 1, items: { type: 'string' } },
            },
          },
        },
      },
    },
    sinks: {
      type: 'array',
      default: [{ name: 'file', type: 'file', path: './data/out' }],
      description: 'Destinations, referred to by name from egress.routes.',
      items: sinkItemSchema(sinkRegistry),
    },
    fields: {
      type: 'object',
      description:
        'Names of the fields added to every output line. A record that already has a field of that name keeps its own value, and the field is not added.',
      additionalProperties: false,
      default: {},
      properties: {
        id: { type: 'string', default: '_id', description: 'Stable event id: chunk key and index (dedupe downstream of Firehose by it).' },
        time: { type: 'string', default: '_time', description: 'Event time, RFC 3339 with nanoseconds.' },
        tag: { type: 'string', default: '_tag', description: 'The event tag.' },
      },
    },
    metrics: {
      type: 'object',
      description: 'Prometheus /metrics, /healthz and /readyz (503 while draining or when the log is unreachable).',
      additionalProperties: false,
      default: {},
      properties: {
        bind: { type: 'string', default: '127.0.0.1', description: 'Address of the metrics and health endpoint.' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 24232, description: 'Its port.' },
      },
    },
    shutdown_grace_ms: {
      type: 'integer',
      minimum: 0,
      default: 10000,
      description: 'On SIGTERM, how long to finish in-flight chunks and egress.',
    },
    log_level: {
      enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      default: 'info',
      description: 'Least severe level logged (JSON lines on stderr).',
    },
  },
} as const;

export interface AggregatorConfig {
  node_id?: string;
  forward: ForwardInputConfig;
  http: HttpInputConfig & { enabled: boolean };
  dedupe: {
    type: 'embedded' | 'redis' | 'none';
    redis?: { url?: string; cluster_nodes?: string[]; key_prefix: string; command_timeout_ms: number };
    claim_ttl_ms: number;
    done_ttl_ms: number;
    claim_wait_ms: number;
    on_unavailable: 'fail_open' | 'fail_closed';
    max_entries: number;
    rebuild_wait_ms: number;
    rebuild_max_keys: number;
  };
  log: {
    type: 'embedded' | 'kafka';
    path: string;
    segment_bytes: number;
    retention_bytes: number;
    retention_ms: number;
    max_backlog_bytes: number;
    kafka?: {
      brokers: string[];
      topic: string;
      partitions: number;
      replication_factor: number;
      min_insync_replicas: number;
      compression: 'none' | 'gzip';
      gzip_level: number;
      partition_by: 'chunk' | 'tag';
      ssl: boolean;
      client_id: string;
      request_timeout_ms: number;
      max_request_bytes: number;
      reader_queue_bytes: number;
    };
  };
  egress: {
    group: string;
    batch_records: number;
    max_wait_ms: number;
    encoder_threads: number | 'auto';
    objects: { bytes: number; age_ms: number; max_tags: number };
    retry_initial_ms: number;
    retry_max_ms: number;
    routes: Array<{ match: string; sinks: string[] }>;
  };
  sinks: SinkConfig[];
  fields: { id: string; time: string; tag: string };
  metrics: { bind: string; port: number };
  shutdown_grace_ms: number;
  log_level: string;
}

function checkReferences(config: AggregatorConfig): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  config.sinks.forEach((s, i) => {
    if (names.has(s.name)) problems.push(`sinks.${i}.name: "${s.name}" is used by another sink`);
    names.add(s.name);
  });
  config.egress.routes.forEach((r, i) =>
    r.sinks.forEach((n, j) => {
      if (!names.has(n)) problems.push(`egress.routes.${i}.sinks.${j}: no sink is named "${n}"`);
    }),
  );
  if (config.log.type === 'kafka' && !config.log.kafka) problems.push('log.kafka: required when log.type is kafka');
  if (config.dedupe.type === 'redis' && !config.dedupe.redis?.url && !config.dedupe.redis?.cluster_nodes?.length) {
    problems.push('dedupe.redis: set url or cluster_nodes when dedupe.type is redis');
  }
  return problems;
}

export const aggregatorConfigSpec: ConfigSchema<AggregatorConfig> = {
  name: 'aggregator',
  schema: aggregatorSchema,
  check: checkReferences,
};

/**
 * The aggregator config with another set of sink types (a test registering
 * its own sink). Named after its extra types, so it is compiled apart from
 * the default one.
 */
export function aggregatorConfigSpecFor(sinks: SinkRegistry): ConfigSchema<AggregatorConfig> {
  if (sinks === sinkRegistry) return aggregatorConfigSpec;
  const extra = sinks.filter((s) => !sinkRegistry.some((r) => r.type === s.type)).map((s) => s.type);
  const schema = {
    ...aggregatorSchema,
    properties: { ...aggregatorSchema.properties, sinks: { ...aggregatorSchema.properties.sinks, items: sinkItemSchema(sinks) } },
  };
  return { name: `aggregator+${extra.join('+')}`, schema, check: checkReferences };
}
