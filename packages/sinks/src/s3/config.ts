import type { Sink } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
/** `type: aws_s3`: one PutObject per object; keys derive from log positions, so a replay overwrites. */
import { awsClientOptions, awsClientProperties } from '../aws';
import { type SinkSpec, gzipLevel, sinkName } from '../spec';

export const s3SinkSchema = {
  type: 'object',
  description: 'Gzip NDJSON objects in an S3 bucket (or MinIO, LocalStack), under Hive-style keys derived from log positions.',
  additionalProperties: false,
  required: ['name', 'type', 'bucket'],
  properties: {
    name: sinkName,
    type: { const: 'aws_s3' },
    bucket: { type: 'string', description: 'Bucket.' },
    prefix: { type: 'string', default: 'logs', description: 'Key prefix.' },
    force_path_style: { type: 'boolean', default: false, description: 'Path-style URLs (MinIO, LocalStack, s3rver).' },
    gzip_level: gzipLevel,
    ...awsClientProperties,
  },
} as const;

export type S3SinkConfig = FromSchema<typeof s3SinkSchema>;

export const s3Sink: SinkSpec<S3SinkConfig> = {
  type: 'aws_s3',
  schema: s3SinkSchema,
  async create(config): Promise<Sink> {
    const { S3Client } = await import('@aws-sdk/client-s3');
    const { S3Sink } = await import('./sink');
    return new S3Sink({
      name: config.name,
      client: new S3Client({ ...awsClientOptions(config), forcePathStyle: config.force_path_style }),
      bucket: config.bucket,
      prefix: config.prefix,
      gzipLevel: config.gzip_level,
    });
  },
};
