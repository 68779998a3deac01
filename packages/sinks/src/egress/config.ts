/**
 * Egress's config (`egress:` of the aggregator) and its mapping to the
 * worker's options: the role hands in the parts it built (the log's reader,
 * the sinks by name) and its metrics; everything else, the encoder threads
 * included, comes from the config here.
 */
import { ConfigError, type EventFilterModule, type LogReader, type Logger } from '@tributary/core';
import type { Sink } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
import type { EgressMetrics, EgressOptions } from './egress-worker';
import { createEncoder, encoderThreads } from './encoder-pool';
import type { FieldNames } from './transcode';

export const egressSchema = {
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
        'Worker threads that encode NDJSON and gzip (auto: one per core beyond the first, at least 2 from 2 cores on, at most 4; 0: on the main thread).',
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
            "Cut a smaller object once it is this old and egress has read its partition to the end: the latency of a quiet stream (on the embedded log, the end of a burst, an object after one cut on bytes or of 1 MiB or more, is cut once nothing new came for max_wait_ms). Raise it (60000-300000, like Firehose's buffering interval) to make fewer, larger S3 objects.",
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
} as const;

/** `egress:` as validated, defaults filled in. */
export type EgressConfig = FromSchema<typeof egressSchema>;

/** What the role built that egress runs on. */
export interface EgressParts {
  reader: LogReader;
  /** Every configured sink by its name (the config's check made sure each route names one). */
  sinks: ReadonlyMap<string, Sink>;
  fields: FieldNames;
  logger: Logger;
  metrics: EgressMetrics;
  /** Filters applied to events before they are encoded, in every encoder thread. */
  filter?: EventFilterModule;
}

/**
 * The worker's options for `config`: routes resolved to the sinks, batching,
 * object cuts and retry from their keys, and an encoder with
 * `encoder_threads` threads (the worker closes it when it stops).
 */
export function egressOptions(config: EgressConfig, parts: EgressParts): EgressOptions {
  const sinkNamed = (name: string): Sink => {
    const sink = parts.sinks.get(name);
    if (!sink) throw new ConfigError(`egress.routes: no sink is named "${name}"`);
    return sink;
  };
  return {
    reader: parts.reader,
    routes: config.routes.map((r) => ({ match: r.match, sinks: r.sinks.map(sinkNamed) })),
    encoder: createEncoder(encoderThreads(config.encoder_threads), parts.logger, undefined, parts.filter),
    fields: parts.fields,
    pollRecords: config.batch_records,
    maxWaitMs: config.max_wait_ms,
    objects: { bytes: config.objects.bytes, ageMs: config.objects.age_ms, maxTags: config.objects.max_tags },
    backoff: { initialMs: config.retry_initial_ms, maxMs: config.retry_max_ms },
    logger: parts.logger,
    metrics: parts.metrics,
  };
}
