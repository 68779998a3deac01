/**
 * `type: aws_metadata` (Fluent Bit's aws filter): adds the EC2 instance's
 * identity (instance id, availability zone, region, instance type, private
 * IP, AMI id, account id) and selected instance tags to each record, read
 * from the instance metadata service with IMDSv2 session tokens, cached and
 * refreshed. When the service cannot be reached, events flow on without the
 * fields (counted as failed), the failure is logged once (TRB_FILTER_AWS_METADATA)
 * and the read is retried. Forwarder only: the fields depend on the host.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { type FilterSpec, filterMatch } from '../spec';
import { IDENTITY_FIELDS, createAwsMetadata } from './aws-metadata';

export const awsMetadataSchema = {
  type: 'object',
  description: "Adds the EC2 instance's identity and tags from the instance metadata service, IMDSv2 (Fluent Bit aws).",
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'aws_metadata' },
    match: filterMatch,
    fields: {
      type: 'array',
      items: { enum: IDENTITY_FIELDS },
      default: ['az', 'ec2_instance_id', 'region', 'ec2_instance_type', 'private_ip', 'ami_id'],
      description: 'Identity fields added, under these names.',
    },
    tags: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Instance tags added, each under its own name (the instance must allow tags in its metadata).',
    },
    endpoint: { type: 'string', default: 'http://169.254.169.254', description: 'The metadata service.' },
    timeout_ms: { type: 'integer', minimum: 1, default: 1000, description: 'Time allowed for each metadata request.' },
    refresh_ms: { type: 'integer', minimum: 1000, default: 300000, description: 'How often the metadata is read again.' },
    retry_ms: { type: 'integer', minimum: 1, default: 5000, description: 'After a failed read, how long until the next try.' },
  },
} as const;

export type AwsMetadataConfig = FromSchema<typeof awsMetadataSchema>;

export const awsMetadataFilter: FilterSpec<AwsMetadataConfig> = {
  type: 'aws_metadata',
  schema: awsMetadataSchema,
  deterministic: false,
  create: (config, ctx) => createAwsMetadata(config, ctx),
};
