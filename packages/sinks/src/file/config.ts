/** `type: file`: gzip NDJSON objects in a local directory (the single-node default). */
import type { Sink } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
import { type SinkSpec, gzipLevel, sinkName } from '../spec';

export const fileSinkSchema = {
  type: 'object',
  description: 'Gzip NDJSON objects under a local directory, in the same Hive layout as S3.',
  additionalProperties: false,
  required: ['name', 'type', 'path'],
  properties: {
    name: sinkName,
    type: { const: 'file' },
    path: { type: 'string', description: 'Output directory.' },
    gzip_level: gzipLevel,
  },
} as const;

export type FileSinkConfig = FromSchema<typeof fileSinkSchema>;

export const fileSink: SinkSpec<FileSinkConfig> = {
  type: 'file',
  schema: fileSinkSchema,
  async create(config, ctx): Promise<Sink> {
    const { FileSink } = await import('./sink');
    const sink = new FileSink({ name: config.name, path: config.path, gzipLevel: config.gzip_level });
    const removed = await sink.start();
    if (removed) {
      ctx.logger.info(
        { sink: config.name, files: removed },
        `Removed ${removed} temp files of writes a stop interrupted in sink ${config.name}.`,
      );
    }
    return sink;
  },
};
