import type { Sink } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
/** `type: aws_firehose`: NDJSON lines to a Firehose delivery stream (at-least-once, each line has a stable `_id`). */
import { awsClientOptions, awsClientProperties } from '../aws';
import { type SinkSpec, sinkName } from '../spec';
import { FIREHOSE_MAX_RECORD_BYTES } from './request-builder';

export const firehoseSinkSchema = {
  type: 'object',
  description:
    'NDJSON lines to an Amazon Data Firehose delivery stream with PutRecordBatch. At-least-once: every line carries a stable id.',
  additionalProperties: false,
  required: ['name', 'type', 'delivery_stream'],
  properties: {
    name: sinkName,
    type: { const: 'aws_firehose' },
    delivery_stream: { type: 'string', description: 'Delivery stream name.' },
    max_record_bytes: {
      type: 'integer',
      minimum: 0,
      maximum: FIREHOSE_MAX_RECORD_BYTES,
      default: 0,
      description: 'Pack several events into one record up to this size (0: one event per record).',
    },
    max_attempts: {
      type: 'integer',
      minimum: 1,
      default: 8,
      description: 'Attempts per call before the batch is retried from the log.',
    },
    dead_letter_path: {
      type: ['string', 'null'],
      default: null,
      description: 'Directory for events Firehose can never accept.',
    },
    ...awsClientProperties,
  },
} as const;

export type FirehoseSinkConfig = FromSchema<typeof firehoseSinkSchema>;

export const firehoseSink: SinkSpec<FirehoseSinkConfig> = {
  type: 'aws_firehose',
  schema: firehoseSinkSchema,
  async create(config, ctx): Promise<Sink> {
    const { FirehoseClient } = await import('@aws-sdk/client-firehose');
    const { FirehoseSink } = await import('./sink');
    return new FirehoseSink({
      name: config.name,
      // The sink owns retries (only failed records, with backoff): the SDK makes one attempt per call.
      client: new FirehoseClient({ ...awsClientOptions(config), maxAttempts: 1 }),
      deliveryStream: config.delivery_stream,
      logger: ctx.logger,
      maxRecordBytes: config.max_record_bytes,
      maxAttempts: config.max_attempts,
      backoff: ctx.backoff,
      deadLetterPath: config.dead_letter_path,
      onStats: ctx.onStats,
    });
  },
};
