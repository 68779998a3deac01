/**
 * Aggregator configuration: the one schema, defaults and descriptions in it
 * (the configuration reference is generated from it). Input, dedupe, log
 * and sink types come from their registries (inputs with this role's
 * defaults).
 */
import type { ConfigSchema } from '@tributary/core';
import { inputProperties } from '@tributary/inputs';
import type { FromSchema } from 'json-schema-to-ts';
import { type DedupeConfig, dedupeRegistry, dedupeSchema } from './dedupe/registry';
import { type LogConfig, logRegistry, logSchema } from './log/registry';
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
    ...inputProperties({
      forward: {
        bind: { default: '0.0.0.0' },
        max_pending_batches: {
          default: 8,
          description: 'Reads per connection waiting for dedupe and the log before the socket is paused (deep enough to overlap fsyncs).',
        },
        max_pending_bytes: { default: 67108864 },
      },
      http: { enabled: { default: false } },
    }),
    dedupe: dedupeSchema(dedupeRegistry),
    log: logSchema(logRegistry),
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

/** The keys whose shape this file gives (the others are built from registries at run time, which FromSchema cannot see into). */
type OwnKeys = Omit<(typeof aggregatorSchema)['properties'], 'dedupe' | 'log' | 'sinks'>;

/**
 * The aggregator config, as validated and defaulted: derived from the schema
 * (json-schema-to-ts), so the two cannot drift. `dedupe`, `log` and `sinks`
 * take their types from their registries' specs, each derived from its own
 * schema.
 */
export type AggregatorConfig = FromSchema<{ type: 'object'; additionalProperties: false; properties: OwnKeys }> & {
  dedupe: DedupeConfig;
  log: LogConfig;
  sinks: SinkConfig[];
};

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
  if (config.dedupe.type === 'redis' && !config.dedupe.redis.url && !config.dedupe.redis.cluster_nodes?.length) {
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
