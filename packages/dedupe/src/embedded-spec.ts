/** `dedupe.type: embedded`: single-node marks in memory, seeded from the embedded log at start. */
import type { FromSchema } from 'json-schema-to-ts';
import { EmbeddedDedupe } from './embedded-dedupe';
import { type DedupeSpec, claimWaitMs, doneTtlMs } from './spec';

export const embeddedDedupeSchema = {
  type: 'object',
  description: 'One node: claims and done marks in memory, rebuilt from the log at start.',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'embedded' },
    done_ttl_ms: doneTtlMs,
    claim_wait_ms: claimWaitMs,
    max_entries: { type: 'integer', minimum: 1000, default: 2000000, description: 'Marks kept in memory (oldest forgotten first).' },
  },
} as const;

export type EmbeddedDedupeConfig = FromSchema<typeof embeddedDedupeSchema>;

export const embeddedDedupe: DedupeSpec<EmbeddedDedupeConfig> = {
  type: 'embedded',
  schema: embeddedDedupeSchema,
  create(config) {
    return { store: new EmbeddedDedupe(config.done_ttl_ms, config.max_entries), claimWaitMs: config.claim_wait_ms };
  },
};
