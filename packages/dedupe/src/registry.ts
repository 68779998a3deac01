/**
 * Every dedupe type the aggregator knows. The `dedupe` config schema, the
 * `DedupeConfig` type, the store `Aggregator.start` opens and the
 * configuration reference are derived from this list: a new dedupe type is
 * its spec and one line here.
 */
import { type ConfigSchema, discriminatedSchema, partConfigSpec } from '@tributary/core';
import { embeddedDedupe } from './embedded-spec';
import { noDedupe } from './none-spec';
import { redisDedupe } from './redis-spec';
import type { DedupeSpec } from './spec';

export const dedupeRegistry = [embeddedDedupe, redisDedupe, noDedupe] as const;

export type DedupeRegistry = readonly DedupeSpec[];

/** The `dedupe` config, as validated and defaulted: a union discriminated by `type`. */
export type DedupeConfig = (typeof dedupeRegistry)[number] extends infer S ? (S extends DedupeSpec<infer C> ? C : never) : never;

/**
 * The schema of `dedupe`: the spec of its `type`, chosen by an ajv
 * discriminator, so a key of another type is rejected with its path. An
 * absent `dedupe` or `dedupe.type` is the embedded store.
 */
export function dedupeSchema(stores: DedupeRegistry) {
  return discriminatedSchema(stores, {
    description: 'Dedupe of resent chunks; the keys of each type are listed under "Dedupe types".',
    defaultType: 'embedded',
    typeDescription: 'embedded: single node, rebuilt from the log at start; redis: across nodes; none: off.',
  });
}

/** What the schema cannot say of `dedupe`, as "path: what" problems (the aggregator's config check runs it too). */
export function checkDedupe(dedupe: DedupeConfig): string[] {
  if (dedupe.type === 'redis' && !dedupe.redis.url && !dedupe.redis.cluster_nodes?.length) {
    return ['dedupe.redis: set url or cluster_nodes when dedupe.type is redis'];
  }
  return [];
}

/** `{dedupe: …}` alone, validated and checked as the aggregator does its `dedupe` key. */
export const dedupeConfigSpec: ConfigSchema<{ dedupe: DedupeConfig }> = partConfigSpec(
  'dedupe',
  dedupeSchema(dedupeRegistry),
  (config: { dedupe: DedupeConfig }) => checkDedupe(config.dedupe),
);
