/**
 * `type: throttle` (Fluent Bit throttle, fluent-plugin-throttle): at most
 * `limit` events per `window_ms` for each group, a group being the tag or
 * the values of `group_keys`. Windows follow the event time, so the result
 * depends on the events alone. What it drops is counted
 * (`tributary_forwarder_filter_dropped_events_total`). Forwarder only: its
 * state spans chunks, so a replay at egress could not give the same output.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { parseKey } from '../record-accessor';
import { keyProblem } from '../regex';
import { type FilterSpec, filterMatch } from '../spec';
import { createThrottle } from './throttle';

export const throttleSchema = {
  type: 'object',
  description: 'Rate-limits events per tag or per key values, by event time; drops are counted (Fluent Bit throttle).',
  additionalProperties: false,
  required: ['type', 'limit'],
  properties: {
    type: { const: 'throttle' },
    match: filterMatch,
    limit: { type: 'integer', minimum: 1, description: 'Events let through per group and window.' },
    window_ms: { type: 'integer', minimum: 1, default: 1000, description: 'Window length; windows are aligned on the event time.' },
    group_keys: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Record keys whose values make a group (`$.a.b` allowed); none: one group per tag.',
    },
    max_groups: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      description: 'Groups tracked at once; past it the oldest group is forgotten (its count starts again).',
    },
  },
} as const;

export type ThrottleConfig = FromSchema<typeof throttleSchema>;

export const throttleFilter: FilterSpec<ThrottleConfig> = {
  type: 'throttle',
  schema: throttleSchema,
  deterministic: false,
  check: (config, path) =>
    (config.group_keys ?? []).flatMap((k, i) => {
      const p = keyProblem(k, `${path}.group_keys[${i}]`, parseKey);
      return p ? [p] : [];
    }),
  create: (config) => createThrottle(config),
};
