/**
 * Forwarder configuration: the one schema, with every default and a
 * description per key (the configuration reference is generated from it).
 */
import type { ConfigSchema } from '@tributary/core';
import { type ForwardInputConfig, type HttpInputConfig, forwardInputSchema, httpInputSchema } from '@tributary/inputs';

/**
 * Limits that must agree across hops. The buffer seals a chunk once it holds
 * `chunk_limit_bytes`, after a hand-off of at most that many bytes per tag
 * (@tributary/inputs, pieces.ts), so entries of a sealed chunk stay below twice the
 * limit; the PackedForward envelope (tag ≤ 255 bytes, chunk option, headers)
 * adds far less than `CHUNK_ENVELOPE_BYTES`.
 */
export const CHUNK_ENVELOPE_BYTES = 64 * 1024;
/** The aggregators' default `forward.max_frame_bytes`; a forwarder's chunks must fit it. */
export const AGGREGATOR_DEFAULT_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_LIMIT_BYTES = 1024 * 1024;
/** Largest `buffer.chunk_limit_bytes`: its chunks fit the aggregators' default frame limit. */
export const MAX_CHUNK_LIMIT_BYTES = 7 * 1024 * 1024;

/** The largest frame (and decompressed entries) a forwarder with this chunk limit sends. */
export function largestChunkFrameBytes(chunkLimitBytes: number): number {
  return 2 * chunkLimitBytes + CHUNK_ENVELOPE_BYTES;
}

export const forwarderSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    forward: forwardInputSchema,
    http: httpInputSchema,
    buffer: {
      type: 'object',
      description: 'Where accepted events wait for delivery.',
      additionalProperties: false,
      default: {},
      properties: {
        type: { enum: ['disk', 'memory'], default: 'disk', description: 'disk survives crashes and restarts; memory loses what it holds.' },
        path: { type: 'string', default: './data/forwarder-buffer', description: 'Directory for the disk buffer.' },
        max_bytes: {
          type: 'integer',
          minimum: 1048576,
          default: 1073741824,
          description: 'Total size before the overflow policy applies.',
        },
        chunk_limit_bytes: {
          type: 'integer',
          minimum: 1024,
          maximum: MAX_CHUNK_LIMIT_BYTES,
          default: DEFAULT_CHUNK_LIMIT_BYTES,
          description:
            "A chunk is sealed and sent once it holds this many bytes; one event larger than this is refused. Sealed chunks stay below twice this, so the 7 MiB maximum keeps them under the aggregators' default 16 MiB frame limit.",
        },
        flush_interval_ms: { type: 'integer', minimum: 1, default: 1000, description: 'A chunk is sealed and sent once it is this old.' },
        overflow: {
          enum: ['block', 'drop_oldest'],
          default: 'block',
          description:
            'block: stop reading sockets (TCP pushes back, HTTP gets 503); drop_oldest: drop the oldest chunks, counted and logged.',
        },
        fsync: {
          enum: ['interval', 'always'],
          default: 'interval',
          description: 'always: fdatasync before every ack; interval: every fsync_interval_ms.',
        },
        fsync_interval_ms: { type: 'integer', minimum: 1, default: 1000, description: 'Period of the interval fsync policy.' },
        memory_cache_bytes: {
          type: 'integer',
          minimum: 0,
          default: 16777216,
          description:
            'Disk buffer only: entries of the newest chunks also kept in memory (all chunks together), so sending them needs no read back. 0: always read from disk.',
        },
        acked_chunk_ids: {
          type: 'object',
          description:
            'Client chunk ids acked, remembered so a resend of an acked chunk (its ack was lost) is acked again and not buffered twice. Journaled beside the disk buffer, so a restart remembers them.',
          additionalProperties: false,
          default: {},
          properties: {
            max_entries: {
              type: 'integer',
              minimum: 0,
              default: 50000,
              description: 'Ids remembered at most (oldest forgotten first). 0: none.',
            },
            ttl_ms: {
              type: 'integer',
              minimum: 1000,
              default: 3600000,
              description: 'How long an id is remembered after its ack; longer than any client waits before resending.',
            },
          },
        },
      },
    },
    output: {
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
    },
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

export interface ForwarderConfig {
  forward: ForwardInputConfig;
  http: HttpInputConfig & { enabled: boolean };
  buffer: {
    type: 'disk' | 'memory';
    path: string;
    max_bytes: number;
    chunk_limit_bytes: number;
    flush_interval_ms: number;
    overflow: 'block' | 'drop_oldest';
    fsync: 'interval' | 'always';
    fsync_interval_ms: number;
    memory_cache_bytes: number;
    acked_chunk_ids: { max_entries: number; ttl_ms: number };
  };
  output: {
    servers: Array<{ host: string; port: number; weight: number; standby: boolean }>;
    compress: 'gzip' | 'none';
    ack_timeout_ms: number;
    connect_timeout_ms: number;
    window: number;
    max_connection_age_ms: number;
    retry: { initial_ms: number; max_ms: number; max_attempts: number | null; dead_letter_path: string | null };
    security?: { self_hostname: string; shared_key: string; username?: string; password?: string };
    tls?: { ca_path?: string; insecure_skip_verify: boolean };
  };
  metrics: { bind: string; port: number };
  shutdown_grace_ms: number;
  log_level: string;
}

export const forwarderConfigSpec: ConfigSchema<ForwarderConfig> = { name: 'forwarder', schema: forwarderSchema };
