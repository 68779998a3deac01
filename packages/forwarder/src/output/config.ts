/**
 * `output:`: delivery to aggregators over the Forward Protocol, acks
 * required. The schema (defaults and descriptions; the configuration
 * reference is generated from it), the config type derived from it, and the
 * spec mapping that config to `ForwardOutput`'s options.
 */
import { readFileSync } from 'node:fs';
import type { ChunkBuffer } from '@tributary/buffer';
import type { ComponentSpec, Logger } from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
import type { ForwarderMetrics } from '../metrics';
import { ForwardOutput, type ForwardOutputOptions } from './forward-output';

export const forwardOutputSchema = {
  type: 'object',
  description: 'Delivery to aggregators over the Forward Protocol, acks required.',
  additionalProperties: false,
  default: {},
  properties: {
    servers: {
      type: 'array',
      minItems: 1,
      default: [{ host: '127.0.0.1', port: 24225 }],
      description: 'Aggregators, or one load-balancer address.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['host', 'port'],
        properties: {
          host: { type: 'string', minLength: 1, description: 'Aggregator or load-balancer host.' },
          port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Its forward port.' },
          weight: { type: 'integer', minimum: 1, default: 60, description: 'Share of traffic in round robin.' },
          standby: { type: 'boolean', default: false, description: 'Used only while no primary is healthy.' },
        },
      },
    },
    compress: { enum: ['gzip', 'none'], default: 'none', description: 'Send CompressedPackedForward.' },
    ack_timeout_ms: {
      type: 'integer',
      minimum: 100,
      default: 30000,
      description: 'No ack within this time: the node is marked down and the chunk resent.',
    },
    connect_timeout_ms: { type: 'integer', minimum: 100, default: 5000, description: 'Connection attempt timeout.' },
    window: { type: 'integer', minimum: 1, maximum: 1024, default: 8, description: 'Unacked chunks in flight per connection.' },
    max_connection_age_ms: {
      type: 'integer',
      minimum: 1000,
      default: 300000,
      description: 'Rotate connections this old so new aggregators behind an NLB get traffic.',
    },
    retry: {
      type: 'object',
      description: 'Per-chunk retry schedule; the chunk keeps its id on every retry.',
      additionalProperties: false,
      default: {},
      properties: {
        initial_ms: { type: 'integer', minimum: 1, default: 500, description: 'First retry delay (jittered, doubled per attempt).' },
        max_ms: { type: 'integer', minimum: 1, default: 30000, description: 'Retry delay cap.' },
        max_attempts: {
          type: ['integer', 'null'],
          minimum: 1,
          default: null,
          description: 'Give up after this many attempts (null: retry forever; the buffer bounds the backlog).',
        },
        dead_letter_path: { type: ['string', 'null'], default: null, description: 'Directory for chunks given up on.' },
      },
    },
    security: {
      type: 'object',
      description: 'Shared-key handshake toward aggregators.',
      additionalProperties: false,
      required: ['self_hostname', 'shared_key'],
      properties: {
        self_hostname: { type: 'string', minLength: 1, description: 'This host as sent in PING (must differ from the server).' },
        shared_key: { type: 'string', minLength: 1, description: "The aggregators' shared key." },
        username: { type: 'string', description: 'User for user_auth on the aggregators.' },
        password: { type: 'string', description: 'Its password.' },
      },
    },
    tls: {
      type: 'object',
      description: 'Connect with TLS.',
      additionalProperties: false,
      properties: {
        ca_path: { type: 'string', description: 'PEM CA bundle to verify aggregators.' },
        insecure_skip_verify: { type: 'boolean', default: false, description: 'Do not verify the certificate (testing only).' },
      },
    },
  },
} as const;

/** `output:` as validated, defaults filled in. */
export type ForwardOutputConfig = FromSchema<typeof forwardOutputSchema>;

export interface OutputContext {
  /** Where the output takes sealed chunks from, and acks them into. */
  buffer: ChunkBuffer;
  logger: Logger;
  metrics: ForwarderMetrics;
}

/** `ForwardOutput`'s options for `config`; reads the TLS CA file (a missing file throws here, before anything connects). */
export function forwardOutputOptions(config: ForwardOutputConfig, ctx: OutputContext): ForwardOutputOptions {
  const { retry, security, tls } = config;
  return {
    servers: config.servers.map((s) => ({ ...s })),
    buffer: ctx.buffer,
    compress: config.compress,
    ackTimeoutMs: config.ack_timeout_ms,
    connectTimeoutMs: config.connect_timeout_ms,
    window: config.window,
    maxConnectionAgeMs: config.max_connection_age_ms,
    retry: { initialMs: retry.initial_ms, maxMs: retry.max_ms, maxAttempts: retry.max_attempts, deadLetterPath: retry.dead_letter_path },
    security: security && {
      hostname: security.self_hostname,
      sharedKey: security.shared_key,
      username: security.username,
      password: security.password,
    },
    tls: tls && { ca: tls.ca_path ? readFileSync(tls.ca_path) : undefined, rejectUnauthorized: !tls.insecure_skip_verify },
    logger: ctx.logger,
    metrics: ctx.metrics,
  };
}

export interface OutputSpec extends ComponentSpec<ForwardOutputConfig, OutputContext, ForwardOutput> {
  /** The output, not sending yet: `start()` begins. */
  create(config: ForwardOutputConfig, ctx: OutputContext): ForwardOutput;
}

/** The forwarder's one output kind. */
export const forwardOutputSpec: OutputSpec = {
  type: 'forward',
  schema: forwardOutputSchema,
  create: (config, ctx) => new ForwardOutput(forwardOutputOptions(config, ctx)),
};
