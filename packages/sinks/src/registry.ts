/**
 * Every sink type the aggregator knows. The `sinks[]` config schema, the
 * `SinkConfig` type, `createSink` and the configuration reference are
 * derived from this list: adding a sink is its folder and one line here.
 */
import type { ConfigSchema } from '@tributary/core';
import { fileSink } from './file/config';
import { firehoseSink } from './firehose/config';
import { s3Sink } from './s3/config';
import { type SinkSpec, sinkName } from './spec';

export const sinkRegistry = [fileSink, s3Sink, firehoseSink] as const;

export type SinkRegistry = readonly SinkSpec[];

/** One sink's config, as validated and defaulted: a union discriminated by `type`. */
export type SinkConfig = (typeof sinkRegistry)[number] extends infer S ? (S extends SinkSpec<infer C> ? C : never) : never;

/**
 * The schema of one `sinks[]` item: the spec of its `type`, chosen by an ajv
 * discriminator, so a key is checked only against its own type's keys and a
 * problem is reported once, with its path. The `type` enum here makes an
 * unknown type name the known ones.
 */
export function sinkItemSchema(sinks: SinkRegistry) {
  return {
    type: 'object',
    required: ['name', 'type'],
    properties: {
      name: sinkName,
      type: { enum: sinks.map((s) => s.type), description: 'Kind of destination; its keys are listed under "Sink types".' },
    },
    discriminator: { propertyName: 'type' },
    oneOf: sinks.map((s) => s.schema),
  };
}

/**
 * `{sinks: [...]}` alone, validated as the aggregator does its `sinks` key
 * (same paths in the problems) with the types of `sinks`: how the sink
 * contract and tools check a sink config without the aggregator. Named
 * after its types, so each registry is compiled apart.
 */
export function sinksConfigSpec(sinks: SinkRegistry): ConfigSchema<{ sinks: SinkConfig[] }> {
  return {
    name: `sinks:${sinks.map((s) => s.type).join('+')}`,
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['sinks'],
      properties: { sinks: { type: 'array', items: sinkItemSchema(sinks) } },
    },
  };
}
