/**
 * The buffer types. `buffer:` is one config object whose `type` picks the
 * spec; each spec maps its config to its buffer's options and opens it, and
 * `createBuffer` wires what every type reports (dropped chunks, storage
 * failures) to the metrics and the log.
 */
import {
  Codes,
  type ComponentSpec,
  type ConfigSchema,
  type Filesystem,
  LogLimiter,
  type Logger,
  createPart,
  discriminatedSchema,
  partConfigSpec,
} from '@tributary/core';
import type { FromSchema } from 'json-schema-to-ts';
import type { AckedIdsWindow } from './acked-chunk-ids';
import type { BufferLimits } from './chunk-buffer';
import { DiskBuffer, type DiskBufferOptions, type RecoveryReport } from './disk-buffer';
import { MemoryBuffer } from './memory-buffer';

/**
 * Limits that must agree across hops. The buffer seals a chunk once it holds
 * `chunk_limit_bytes`, after a hand-off of at most that many bytes per tag
 * (@tributary/inputs, pieces.ts), so entries of a sealed chunk stay below twice the
 * limit; the PackedForward envelope (tag ≤ 255 bytes, chunk option, headers)
 * adds far less than `CHUNK_ENVELOPE_BYTES`.
 */
export const CHUNK_ENVELOPE_BYTES = 64 * 1024;
export const DEFAULT_CHUNK_LIMIT_BYTES = 1024 * 1024;
/** Largest `buffer.chunk_limit_bytes`: its chunks fit the aggregators' default frame limit (forward-protocol's DEFAULT_MAX_FRAME_BYTES, 16 MiB). */
export const MAX_CHUNK_LIMIT_BYTES = 7 * 1024 * 1024;

/** The largest frame (and decompressed entries) a forwarder with this chunk limit sends. */
export function largestChunkFrameBytes(chunkLimitBytes: number): number {
  return 2 * chunkLimitBytes + CHUNK_ENVELOPE_BYTES;
}

/** Repeats of one buffer I/O failure are logged at most this often (every one is counted). */
const IO_ERROR_LOG_INTERVAL_MS = 5000;

/** Keys every buffer type takes. */
const sharedKeys = {
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
    description: 'block: stop reading sockets (TCP pushes back, HTTP gets 503); drop_oldest: drop the oldest chunks, counted and logged.',
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
        description: 'Ids remembered at most (oldest forgotten first; a chunk stored in pieces takes one per piece). 0: none.',
      },
      ttl_ms: {
        type: 'integer',
        minimum: 1000,
        default: 3600000,
        description: 'How long an id is remembered after its ack; longer than any client waits before resending.',
      },
    },
  },
} as const;

export const diskBufferSchema = {
  type: 'object',
  description: 'Chunk files under `path`, recovered on open: survives crashes and restarts.',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'disk' },
    path: { type: 'string', default: './data/forwarder-buffer', description: 'Directory for the disk buffer.' },
    ...sharedKeys,
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
        'Entries of the newest chunks also kept in memory (all chunks together), so sending them needs no read back. 0: always read from disk.',
    },
  },
} as const;

export const memoryBufferSchema = {
  type: 'object',
  description: 'Chunks in memory: loses what it holds on a crash or restart.',
  additionalProperties: false,
  required: ['type'],
  properties: { type: { const: 'memory' }, ...sharedKeys },
} as const;

export type DiskBufferConfig = FromSchema<typeof diskBufferSchema>;
export type MemoryBufferConfig = FromSchema<typeof memoryBufferSchema>;
/** `buffer:` as validated, defaults filled in: a union discriminated by `type`. */
export type BufferConfig = DiskBufferConfig | MemoryBufferConfig;

export interface BufferContext {
  logger: Logger;
  /** The disk buffer's filesystem (a FaultyFilesystem in fault-injection tests); the real one when unset. */
  fs?: Filesystem;
  /** Storage errors while the buffer opens (`createBuffer` passes the reporter it then sets as the buffer's `onIoError`). */
  onIoError?: (op: string, err: Error, what: string) => void;
}

/** The buffers a spec makes: both report drops and storage failures through hooks `createBuffer` sets. */
export type ForwarderBuffer = DiskBuffer | MemoryBuffer;

/**
 * A buffer type. `schema` is the whole `buffer` object of the type (`type` as
 * a `const`, `additionalProperties: false`); `C` is derived from it.
 */
export interface BufferSpec<C = unknown> extends ComponentSpec<C, BufferContext, ForwarderBuffer> {
  /** Opens the buffer; for a disk buffer, after recovering (and logging) what an earlier run left. */
  create(config: C, ctx: BufferContext): Promise<ForwarderBuffer>;
}

/** The limits every kind applies. */
export function bufferLimits(config: BufferConfig): BufferLimits {
  return {
    maxBytes: config.max_bytes,
    chunkLimitBytes: config.chunk_limit_bytes,
    flushIntervalMs: config.flush_interval_ms,
    overflow: config.overflow,
  };
}

export function ackedIdsWindow(config: BufferConfig): AckedIdsWindow {
  return { maxEntries: config.acked_chunk_ids.max_entries, ttlMs: config.acked_chunk_ids.ttl_ms };
}

export function diskBufferOptions(config: DiskBufferConfig, fs?: Filesystem): DiskBufferOptions {
  return {
    ...bufferLimits(config),
    path: config.path,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsync_interval_ms,
    memoryCacheBytes: config.memory_cache_bytes,
    ackedIds: ackedIdsWindow(config),
    fs,
  };
}

/** `type: disk`: chunk files under `path`, recovered on open; survives crashes and restarts. */
export const diskBuffer: BufferSpec<DiskBufferConfig> = {
  type: 'disk',
  schema: diskBufferSchema,
  async create(config, { logger, fs, onIoError }) {
    // What recovery repaired is logged as soon as it is known, so an open that fails afterwards has said it.
    const onRecovered = (reports: RecoveryReport[]) => {
      for (const r of reports) {
        if (!r.problem) continue;
        logger.warn(
          { code: Codes.TRB_BUF_RECOVERY_SKIP, file: r.file, skippedBytes: r.skippedBytes },
          `Buffer file ${r.file}: ${r.problem}; kept ${r.events} events, skipped ${r.skippedBytes} bytes.`,
        );
      }
    };
    const { buffer, recovered, idsRemembered } = await DiskBuffer.open({ ...diskBufferOptions(config, fs), onIoError, onRecovered });
    const events = recovered.reduce((n, r) => n + r.events, 0);
    if (recovered.length) {
      const ids = idsRemembered
        ? ` ${idsRemembered} client chunk ids stored beside them were missing from the acked-id journal (a crash between the two writes) and are remembered again.`
        : '';
      logger.info(
        { code: Codes.TRB_BUF_RECOVERED, chunks: recovered.length, events, idsRemembered },
        `Recovered ${events} buffered events from ${config.path}.${ids}`,
      );
    }
    return buffer;
  },
};

/** `type: memory`: loses what it holds on a crash or restart. */
export const memoryBuffer: BufferSpec<MemoryBufferConfig> = {
  type: 'memory',
  schema: memoryBufferSchema,
  async create(config) {
    return new MemoryBuffer(bufferLimits(config), ackedIdsWindow(config));
  },
};

/** Every buffer type: the `buffer` schema, its config type and the reference derive from this list. */
export const bufferRegistry = [diskBuffer, memoryBuffer] as const;

export type BufferRegistry = readonly BufferSpec[];

/**
 * The schema of `buffer`: the spec of its `type`, chosen by an ajv
 * discriminator, so a key of another type is rejected with its path. An
 * absent `buffer` or `buffer.type` is the disk buffer.
 */
function bufferSchemaOf(buffers: BufferRegistry) {
  return discriminatedSchema(buffers, {
    description: 'Where accepted events wait for delivery; the keys of each type are listed under "Buffer types".',
    defaultType: 'disk',
    typeDescription: 'disk survives crashes and restarts; memory loses what it holds.',
  });
}

export const bufferSchema = bufferSchemaOf(bufferRegistry);

/** `{buffer: …}` alone, validated as the forwarder does its `buffer` key. */
export const bufferConfigSpec: ConfigSchema<{ buffer: BufferConfig }> = partConfigSpec('buffer', bufferSchema);

/** The counters a buffer's drops and storage failures go to (the forwarder's metrics satisfy it). */
export interface BufferMetrics {
  /** Events dropped by the drop_oldest overflow policy. */
  droppedEvents: { inc(value: number): void };
  /** Filesystem errors, by step and errno code. */
  bufferIoErrors: { inc(labels: { op: string; code: string }): void };
}

/**
 * The buffer `config.type` names, opened, its drops and storage failures
 * (from the open on, including those of an open that fails besides the one
 * it rejects with) counted and logged (a failure repeated within
 * IO_ERROR_LOG_INTERVAL_MS is counted, and logged once with how many it
 * stood for).
 */
export async function createBuffer(config: BufferConfig, ctx: BufferContext & { metrics: BufferMetrics }): Promise<ForwarderBuffer> {
  const { logger, metrics } = ctx;
  const ioLogs = new LogLimiter(IO_ERROR_LOG_INTERVAL_MS);
  const onIoError = (op: string, err: Error, what: string): void => {
    const code = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
    metrics.bufferIoErrors.inc({ op, code });
    const suppressed = ioLogs.admit(`${op}:${code}`);
    if (suppressed === null) return;
    const repeats = suppressed ? ` (${suppressed} more like it since the last report)` : '';
    logger.error(
      { code: Codes.TRB_BUF_IO, op, errno: code, err: err.message },
      `Disk buffer ${op} failed: ${err.message}. ${what}${repeats}`,
    );
  };
  const buffer = await createPart<BufferSpec>(bufferRegistry, config, { ...ctx, onIoError }, 'buffer');
  buffer.onDrop = (chunk) => {
    metrics.droppedEvents.inc(chunk.count);
    logger.warn(
      { code: Codes.TRB_BUF_DROPPED, events: chunk.count },
      `The buffer is full: dropped the oldest chunk (${chunk.count} events) under the drop_oldest policy.`,
    );
  };
  buffer.onIoError = onIoError;
  return buffer;
}
