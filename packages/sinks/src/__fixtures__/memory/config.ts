/** `type: memory`, a sink that exists only for tests: what adding a sink takes, a folder with its spec. */
import type { Sink } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
import { type SinkSpec, gzipLevel, sinkName } from '../../spec';

export const memorySinkSchema = {
  type: 'object',
  description: 'Test only: objects kept in a map in this process.',
  additionalProperties: false,
  required: ['name', 'type', 'store'],
  properties: {
    name: sinkName,
    type: { const: 'memory' },
    store: { type: 'string', minLength: 1, description: 'Name of the in-process store the objects go to.' },
    gzip_level: gzipLevel,
  },
} as const;

export type MemorySinkConfig = FromSchema<typeof memorySinkSchema>;

export const memorySink: SinkSpec<MemorySinkConfig> = {
  type: 'memory',
  schema: memorySinkSchema,
  async create(config): Promise<Sink> {
    const { MemorySink } = await import('./sink');
    return new MemorySink(config.name, config.store, config.gzip_level);
  },
};
