/** `log.type: embedded`: a disk log on this node (single node, no servers). */
import type { FromSchema } from 'json-schema-to-ts';
import { EmbeddedLog } from './embedded-log';
import type { LogSpec } from './spec';

export const embeddedLogSchema = {
  type: 'object',
  description: 'A segmented disk log on this node, fdatasynced before each ack (one node, no servers).',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'embedded' },
    path: { type: 'string', default: './data/aggregator-log', description: 'Embedded log directory.' },
    segment_bytes: { type: 'integer', minimum: 1024, default: 67108864, description: 'Embedded log segment size.' },
    retention_bytes: {
      type: 'integer',
      minimum: 1024,
      default: 10737418240,
      description: 'Embedded log: consumed segments beyond this size are deleted.',
    },
    retention_ms: {
      type: 'integer',
      minimum: 1000,
      default: 259200000,
      description: 'Embedded log: consumed segments older than this are deleted.',
    },
    max_backlog_bytes: {
      type: 'integer',
      minimum: 0,
      default: 268435456,
      description:
        'Embedded log: while egress is this many bytes behind, ingest waits (senders are slowed by TCP) instead of the log growing without bound; a batch that waits over 30 s is refused unacked and resent. 0: no bound.',
    },
  },
} as const;

export type EmbeddedLogConfig = FromSchema<typeof embeddedLogSchema>;

export const embeddedLog: LogSpec<EmbeddedLogConfig> = {
  type: 'embedded',
  schema: embeddedLogSchema,
  create(config, ctx) {
    const log = new EmbeddedLog({
      path: config.path,
      segmentBytes: config.segment_bytes,
      retentionBytes: config.retention_bytes,
      retentionMs: config.retention_ms,
      logger: ctx.logger,
    });
    return { log, maxBacklogBytes: config.max_backlog_bytes };
  },
};
