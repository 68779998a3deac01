/**
 * The HTTP input's configuration: schema (defaults and descriptions, the
 * configuration reference is generated from it) and the type derived from
 * it. `enabled` is the role's switch for the input; each role sets its own
 * default (`inputProperties`).
 */
import type { FromSchema } from 'json-schema-to-ts';

export const httpInputSchema = {
  type: 'object',
  description: 'HTTP input (Fluentd in_http compatible): POST /<tag>.',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Serve the HTTP input.' },
    bind: { type: 'string', default: '127.0.0.1', description: 'Address to listen on.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 9880, description: 'TCP port.' },
    body_limit_bytes: { type: 'integer', minimum: 1024, default: 33554432, description: 'Largest request body; larger ones get 413.' },
    max_records_per_request: {
      type: 'integer',
      minimum: 1,
      default: 10000,
      description: 'Most records in one request (a JSON or msgpack array); more get 413.',
    },
    max_pending_bytes: {
      type: 'integer',
      minimum: 65536,
      default: 33554432,
      description:
        'Bytes of request bodies being received, all requests together; a request whose declared length does not fit gets 503 with Retry-After at once, a chunked one when it passes the limit.',
    },
    header_timeout_ms: {
      type: 'integer',
      minimum: 100,
      default: 10000,
      description: "A request's headers must arrive within this long, or the connection is closed (slowloris).",
    },
    request_timeout_ms: {
      type: 'integer',
      minimum: 100,
      default: 60000,
      description: 'A whole request (headers and body) must arrive within this long, or it gets 408 and the connection is closed.',
    },
  },
} as const;

/** The HTTP input's config as validated, defaults filled in: derived from the schema, never written by hand. */
export type HttpInputConfig = FromSchema<typeof httpInputSchema>;
