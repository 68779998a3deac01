/**
 * What a sink type gives the rest of the aggregator: its config schema and
 * its factory. The registry (registry.ts) lists the specs; the config schema
 * of `sinks[]`, the `SinkConfig` type, `createSink` and the configuration
 * reference are all derived from that one list, so adding a sink is a folder
 * with a spec and one registry line.
 */
import type { ComponentSchema, ComponentSpec, Logger, Sink } from '@tributary/core';
import type { JSONSchema } from 'json-schema-to-ts';

/** `name`: every sink has one; routes refer to it. */
export const sinkName = { type: 'string', minLength: 1, description: 'Name routes refer to.' } as const;

/** The object sinks' gzip level (file, S3): egress compresses, the sink writes. */
export const gzipLevel = {
  type: 'integer',
  minimum: 1,
  maximum: 9,
  default: 1,
  description: 'Gzip level of the objects (1: fastest, about a third larger than 6).',
} as const;

/** Counts of what a sink's own API calls did, for the metrics labelled with its name. */
export interface SinkStats {
  calls: number;
  records: number;
  failedRecords: number;
  throttled: number;
  deadLetters: number;
}

export interface SinkContext {
  logger: Logger;
  /** Egress's retry backoff, for a sink that also retries within one `put`. */
  backoff: { initialMs: number; maxMs: number };
  onStats(stats: SinkStats): void;
}

/**
 * One sink type. `schema` is the whole config object of the type: `type`
 * as a `const`, `name`, the type's own keys, `additionalProperties: false`
 * (so a key of another type is rejected with its path). `C` is derived from
 * it with json-schema-to-ts `FromSchema`, never written by hand.
 */
export interface SinkSpec<C = unknown> extends ComponentSpec<C, SinkContext, Sink> {
  readonly schema: ComponentSchema & JSONSchema;
  /**
   * Resolves to a sink ready to take `put`s (leftovers of a crashed write
   * already cleaned up), or rejects when it cannot be made. Client libraries
   * load here, so a node loads only the ones its sinks use.
   */
  create(config: C, ctx: SinkContext): Promise<Sink>;
}
