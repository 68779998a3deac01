/**
 * Aggregator configuration: the one schema, defaults and descriptions in it
 * (the configuration reference is generated from it). Input, dedupe, log
 * and sink types come from their registries (inputs with this role's
 * defaults), `egress` from the sinks package, which maps it to the worker's
 * options.
 */
import type { ConfigSchema } from '@tributary/core';
import { type DedupeConfig, checkDedupe, dedupeRegistry, dedupeSchema } from '@tributary/dedupe';
import { type FilterConfig, checkEgressFilters, checkFilters, filtersSchema } from '@tributary/filters';
import { inputProperties } from '@tributary/inputs';
import { type LogConfig, logRegistry, logSchema } from '@tributary/log';
import { type SinkConfig, type SinkRegistry, egressSchema, sinkItemSchema, sinkRegistry } from '@tributary/sinks';
import type { FromSchema } from 'json-schema-to-ts';

/** The inputs with this role's defaults; `tail` is the forwarder's (an edge agent reads files, an aggregator takes them over the network). */
const { tail: _forwarderOnly, ...aggregatorInputs } = inputProperties({
  forward: {
    bind: { default: '0.0.0.0' },
    max_pending_batches: {
      default: 8,
      description: 'Reads per connection waiting for dedupe and the log before the socket is paused (deep enough to overlap fsyncs).',
    },
    max_pending_bytes: { default: 67108864 },
  },
  http: { enabled: { default: false } },
});

export const aggregatorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    node_id: {
      type: 'string',
      minLength: 1,
      description: "Owner name recorded in dedupe claims; must stay the same across restarts (default: this machine's hostname).",
    },
    ...aggregatorInputs,
    dedupe: dedupeSchema(dedupeRegistry),
    log: logSchema(logRegistry),
    filters: {
      ...filtersSchema(),
      description:
        'Filters applied at egress, in this order, to the events whose tag each one matches: the log keeps the raw chunks and a replay applies them again. Only deterministic types (grep, record, parser, mask).',
    },
    egress: egressSchema,
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
        metadata: {
          type: 'string',
          default: '_metadata',
          description:
            "Where an event's Fluent Bit metadata goes (entries `[[time, metadata], record]`, sent by Fluent Bit with Retain_Metadata_In_Forward_Mode): its map as a JSON object under this key, in S3 and Firehose lines alike; an event with empty or no metadata gets no such key. Another name renames it; an empty string drops metadata. Metadata never sends an event to the dead letters.",
        },
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
type OwnKeys = Omit<(typeof aggregatorSchema)['properties'], 'dedupe' | 'log' | 'sinks' | 'filters'>;

/**
 * The aggregator config, as validated and defaulted: derived from the schema
 * (json-schema-to-ts), so the two cannot drift. `dedupe`, `log`, `sinks` and `filters`
 * take their types from their registries' specs, each derived from its own
 * schema.
 */
export type AggregatorConfig = FromSchema<{ type: 'object'; additionalProperties: false; properties: OwnKeys }> & {
  dedupe: DedupeConfig;
  log: LogConfig;
  sinks: SinkConfig[];
  filters: FilterConfig[];
};

function checkReferences(config: AggregatorConfig): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  config.sinks.forEach((s, i) => {
    if (names.has(s.name)) problems.push(`sinks[${i}].name: "${s.name}" is used by another sink`);
    names.add(s.name);
  });
  config.egress.routes.forEach((r, i) =>
    r.sinks.forEach((n, j) => {
      if (!names.has(n)) problems.push(`egress.routes[${i}].sinks[${j}]: no sink is named "${n}"`);
    }),
  );
  problems.push(...checkDedupe(config.dedupe));
  problems.push(...checkFilters(config.filters), ...checkEgressFilters(config.filters));
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
