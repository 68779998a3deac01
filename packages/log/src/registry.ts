/**
 * Every durable log type the aggregator knows. The `log` config schema, the
 * `LogConfig` type, the log `Aggregator.start` opens and the configuration
 * reference are derived from this list: a new log type is its spec and one
 * line here.
 */
import { type ConfigSchema, discriminatedSchema, partConfigSpec } from '@tributary/core';
import { embeddedLog } from './embedded-spec';
import { kafkaLog } from './kafka-spec';
import type { LogSpec } from './spec';

export const logRegistry = [embeddedLog, kafkaLog] as const;

export type LogRegistry = readonly LogSpec[];

/** The `log` config, as validated and defaulted: a union discriminated by `type`. */
export type LogConfig = (typeof logRegistry)[number] extends infer S ? (S extends LogSpec<infer C> ? C : never) : never;

/**
 * The schema of `log`: the spec of its `type`, chosen by an ajv
 * discriminator, so a key of another type is rejected with its path. An
 * absent `log` or `log.type` is the embedded log.
 */
export function logSchema(logs: LogRegistry) {
  return discriminatedSchema(logs, {
    description: 'The durable log between ingest and egress; the keys of each type are listed under "Log types".',
    defaultType: 'embedded',
    typeDescription: 'embedded: disk log on this node; kafka: a Kafka cluster (MSK).',
  });
}

/** `{log: …}` alone, validated as the aggregator does its `log` key. */
export const logConfigSpec: ConfigSchema<{ log: LogConfig }> = partConfigSpec('log', logSchema(logRegistry));
