/**
 * The forward input's configuration: schema (defaults and descriptions, the
 * configuration reference is generated from it), the type derived from it,
 * and the mapping to the protocol server's options.
 */
import type { ServerSecurity } from '@tributary/forward-protocol';
import type { FromSchema } from 'json-schema-to-ts';

const securityServer = {
  type: 'object',
  description: 'Shared-key handshake required from senders (Fluentd <security>).',
  additionalProperties: false,
  required: ['self_hostname', 'shared_key'],
  properties: {
    self_hostname: { type: 'string', minLength: 1, description: 'Hostname sent in PONG.' },
    shared_key: { type: 'string', minLength: 1, description: 'Shared key for clients not listed in clients.' },
    user_auth: { type: 'boolean', default: false, description: 'Require username/password from the users list.' },
    users: {
      type: 'array',
      default: [],
      description: 'Users for user_auth.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password'],
        properties: {
          username: { type: 'string', description: 'User name sent in PING.' },
          password: { type: 'string', description: 'Its password.' },
        },
      },
    },
    allow_anonymous_source: { type: 'boolean', default: true, description: 'Accept sources not listed in clients.' },
    clients: {
      type: 'array',
      default: [],
      description: 'Per-source settings, matched by host (IP) or network (CIDR).',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          host: { type: 'string', description: 'Source IP address this entry applies to.' },
          network: { type: 'string', pattern: '^[0-9a-fA-F.:]+/[0-9]{1,3}$', description: 'Source network (CIDR) this entry applies to.' },
          shared_key: { type: 'string', description: "Shared key for this source, instead of the server's." },
          users: { type: 'array', items: { type: 'string' }, description: 'Users this source may authenticate as (all when absent).' },
        },
      },
    },
  },
} as const;

const tlsServer = {
  type: 'object',
  description: 'Serve TLS with this certificate and key (PEM file paths).',
  additionalProperties: false,
  required: ['cert_path', 'key_path'],
  properties: {
    cert_path: { type: 'string', description: 'PEM certificate chain.' },
    key_path: { type: 'string', description: 'PEM private key.' },
    ca_path: { type: 'string', description: 'PEM CA bundle to verify client certificates.' },
  },
} as const;

export const forwardInputSchema = {
  type: 'object',
  description: 'Forward Protocol input (Fluentd in_forward compatible).',
  additionalProperties: false,
  default: {},
  properties: {
    bind: { type: 'string', default: '127.0.0.1', description: 'Address to listen on.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 24224, description: 'TCP port (and UDP heartbeat port).' },
    max_frame_bytes: {
      type: 'integer',
      minimum: 1024,
      default: 16777216,
      description: 'Largest request accepted; larger ones close the connection, unacked.',
    },
    max_decompressed_bytes: {
      type: 'integer',
      minimum: 1024,
      default: 67108864,
      description: 'Largest decompressed gzip chunk accepted.',
    },
    udp_heartbeat: { type: 'boolean', default: true, description: 'Answer UDP heartbeats on the same port.' },
    max_pending_batches: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: 2,
      description: 'Reads per connection waiting for the next stage before the socket is paused; bounds memory per connection.',
    },
    max_pending_bytes: {
      type: 'integer',
      minimum: 65536,
      default: 33554432,
      description:
        'Bytes of events read and waiting for the next stage, all connections together; at this total every connection that adds more is paused (memory stays bounded however many senders connect). Bytes of frames not complete yet are counted apart against the same limit: a connection holding part of a frame is paused when that total is spent (one keeps reading, so frames complete).',
    },
    idle_timeout_ms: {
      type: 'integer',
      minimum: 0,
      default: 120000,
      description: 'Close a connection that sent nothing for this long while none of its events were waiting (0: never).',
    },
    max_connections: {
      type: ['integer', 'null'],
      minimum: 0,
      default: null,
      description:
        'Most connections held at once; more are closed as they arrive. null: the open-file soft limit minus an eighth of it (at least 64), so descriptors never run out on connections alone; 0: unbounded.',
    },
    handshake_timeout_ms: {
      type: 'integer',
      minimum: 100,
      default: 10000,
      description: 'With security: close a connection that did not authenticate (valid PING) within this long.',
    },
    security: securityServer,
    tls: tlsServer,
  },
} as const;

/** The forward input's config as validated, defaults filled in: derived from the schema, never written by hand. */
export type ForwardInputConfig = FromSchema<typeof forwardInputSchema>;

type SecurityServerConfig = NonNullable<ForwardInputConfig['security']>;

export function toServerSecurity(s: SecurityServerConfig): ServerSecurity {
  return {
    selfHostname: s.self_hostname,
    sharedKey: s.shared_key,
    userAuth: s.user_auth,
    users: [...s.users],
    allowAnonymousSource: s.allow_anonymous_source,
    clients: s.clients.map((c) => ({
      host: c.host,
      network: c.network,
      sharedKey: c.shared_key,
      users: c.users ? [...c.users] : undefined,
    })),
  };
}
