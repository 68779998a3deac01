/**
 * What a dedupe type gives the aggregator: its config schema and its
 * factory. The registry (registry.ts) lists the specs; the `dedupe` config
 * schema, the `DedupeConfig` type, the store `Aggregator.start` opens and
 * the configuration reference all derive from that one list.
 *
 * The context is structural: the aggregator's metrics and its durable log
 * satisfy `DedupeMetrics` and `DedupeLogView` without this package
 * importing either.
 */
import type { ComponentSpec, Logger } from '@tributary/core';
import type { Cluster, Redis } from 'ioredis';
import type { DedupeStore } from './dedupe-store';

interface Count {
  inc(value?: number): void;
}

/** The counters and the gauge dedupe keeps current (Prometheus names are the role's: `tributary_aggregator_dedupe_*`). */
export interface DedupeMetrics {
  /** Redis errors (fail_open lets chunks through). */
  dedupeUnavailable: Count;
  /** Times Redis was seen to have lost its marks. */
  dedupeStateLost: Count;
  /** 1 while the marks are being rebuilt from the logs. */
  dedupeRebuilding: { set(value: number): void };
  dedupeRebuildFailures: Count;
  /** fail_open: chunks written while the marks were being rebuilt. */
  dedupeUnverified: Count;
  /** Chunks of this node's log found written by another node too. */
  dedupeDuplicates: Count;
  /** Claims of a restarted node taken over without waiting for the claim TTL. */
  dedupeStaleClaims: Count;
}

/** What dedupe reads of the node's durable log. */
export interface DedupeLogView {
  /** `kafka`: one log every node shares, whose tail a rebuild re-marks; `embedded`: this node's own. */
  readonly kind: string;
  /** Dedupe keys of the newest records the log retains, oldest first, at most `max`. */
  recentKeys(max: number): Promise<string[]>;
}

export interface DedupeContext {
  logger: Logger;
  metrics: DedupeMetrics;
  /** This node's id (`node_id`, or the hostname): stable across restarts. */
  node: string;
  /** The node's durable log, already started (a shared log's tail is what a rebuild re-marks). */
  log: DedupeLogView;
  /** A Redis client to use instead of one made from the config (tests hand in their own). */
  redisClient?: Redis | Cluster;
}

/** What a dedupe spec makes: the store (null: dedupe off), not yet started, and how long ingest waits on a busy claim. */
export interface DedupePart {
  store: DedupeStore | null;
  /** How long a resend waits for the node holding its claim before it is refused unacked. */
  claimWaitMs: number;
}

/**
 * One dedupe type. `schema` is the whole `dedupe` object of the type (`type`
 * as a `const`, `additionalProperties: false`); `C` is derived from it with
 * `FromSchema`. `create` maps the config to the store's options and wires
 * its events to metrics and logs; the caller starts the store with the
 * log's keys and closes it when a later step fails.
 */
export interface DedupeSpec<C = unknown> extends ComponentSpec<C, DedupeContext, DedupePart> {
  create(config: C, ctx: DedupeContext): DedupePart;
}

/** Keys several dedupe types share, each type listing the ones it uses. */
export const doneTtlMs = {
  type: 'integer',
  minimum: 1000,
  default: 259200000,
  description: 'How long a written chunk is remembered (default 72 h, a forwarder retry horizon).',
} as const;

export const claimWaitMs = {
  type: 'integer',
  minimum: 0,
  default: 5000,
  description: 'How long a resend waits for another node holding the claim before it gets no ack.',
} as const;
