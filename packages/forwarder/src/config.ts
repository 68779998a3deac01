import { type BufferConfig, bufferSchema } from '@tributary/buffer';
/**
 * Forwarder configuration: the one schema, composed of its parts' schemas
 * (the inputs', the buffer's, the output's), with every default and a
 * description per key (the configuration reference is generated from it).
 * `ForwarderConfig` is derived from it, so the two cannot drift.
 */
import type { ConfigSchema } from '@tributary/core';
import { type FilterConfig, checkFilters, filtersSchema } from '@tributary/filters';
import { inputProperties } from '@tributary/inputs';
import type { FromSchema } from 'json-schema-to-ts';
import { forwardOutputSchema } from './output/config';

export const forwarderSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...inputProperties(),
    filters: filtersSchema(),
    buffer: bufferSchema,
    output: forwardOutputSchema,
    metrics: {
      type: 'object',
      description: 'Prometheus /metrics, /healthz and /readyz.',
      additionalProperties: false,
      default: {},
      properties: {
        bind: { type: 'string', default: '127.0.0.1', description: 'Address of the metrics and health endpoint.' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 24231, description: 'Its port.' },
      },
    },
    shutdown_grace_ms: {
      type: 'integer',
      minimum: 0,
      default: 10000,
      description: 'On SIGTERM, how long to keep flushing before exiting (the rest stays on disk).',
    },
    log_level: {
      enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      default: 'info',
      description: 'Least severe level logged (JSON lines on stderr).',
    },
  },
} as const;

/** The keys whose shape FromSchema can see (`buffer` and `filters` are built from their registries at run time). */
type OwnKeys = Omit<(typeof forwarderSchema)['properties'], 'buffer' | 'filters'>;

/** The forwarder's config as validated, defaults filled in; `buffer` and `filters` take their types from their specs. */
export type ForwarderConfig = FromSchema<{ type: 'object'; additionalProperties: false; properties: OwnKeys }> & {
  buffer: BufferConfig;
  filters: FilterConfig[];
};

export const forwarderConfigSpec: ConfigSchema<ForwarderConfig> = {
  name: 'forwarder',
  schema: forwarderSchema,
  check: (config) => checkFilters(config.filters),
};
