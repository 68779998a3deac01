/** `dedupe.type: none`: no dedupe; a resent chunk is written again (at-least-once). */
import type { FromSchema } from 'json-schema-to-ts';
import type { DedupeSpec } from './spec';

export const noDedupeSchema = {
  type: 'object',
  description: 'Off: every chunk is written, resends included (at-least-once).',
  additionalProperties: false,
  required: ['type'],
  properties: { type: { const: 'none' } },
} as const;

export type NoDedupeConfig = FromSchema<typeof noDedupeSchema>;

export const noDedupe: DedupeSpec<NoDedupeConfig> = {
  type: 'none',
  schema: noDedupeSchema,
  create() {
    return { store: null, claimWaitMs: 0 };
  },
};
