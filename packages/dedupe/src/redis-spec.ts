/** `dedupe.type: redis`: claims and done marks in Redis (ElastiCache), shared by every aggregator. */
import { Codes, LogLimiter } from '@tributary/core';
import Redis, { Cluster } from 'ioredis';
import type { FromSchema } from 'json-schema-to-ts';
import { RedisDedupe, type RedisDedupeEvents } from './redis-dedupe';
import { type DedupeContext, type DedupeSpec, claimWaitMs, doneTtlMs } from './spec';

export const redisDedupeSchema = {
  type: 'object',
  description: 'Across nodes: claims and done marks in Redis (ElastiCache, standalone or cluster mode).',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'redis' },
    redis: {
      type: 'object',
      description: 'Redis (ElastiCache) connection; set url or cluster_nodes.',
      additionalProperties: false,
      default: {},
      properties: {
        url: { type: 'string', description: 'redis://host:port (standalone).' },
        cluster_nodes: {
          type: 'array',
          items: { type: 'string' },
          description: 'host:port seeds for Redis Cluster (ElastiCache cluster mode).',
        },
        key_prefix: { type: 'string', default: 'trb:dd:', description: 'Prefix of every dedupe key.' },
        command_timeout_ms: {
          type: 'integer',
          minimum: 10,
          default: 1000,
          description: 'A Redis call slower than this counts as Redis unavailable.',
        },
      },
    },
    claim_ttl_ms: {
      type: 'integer',
      minimum: 100,
      default: 30000,
      description: 'How long a claim holds before another node may take the chunk.',
    },
    done_ttl_ms: doneTtlMs,
    claim_wait_ms: claimWaitMs,
    on_unavailable: {
      enum: ['fail_open', 'fail_closed'],
      default: 'fail_open',
      description: 'Redis down: keep accepting (at-least-once) or stop acking.',
    },
    rebuild_wait_ms: {
      type: 'integer',
      minimum: 0,
      default: 10000,
      description:
        'After Redis lost its memory, how long a node waits for its peers to re-mark the chunks in their logs before it trusts the marks again (fail_closed refuses acks meanwhile, and waits longer for a peer whose heartbeat shows it alive).',
    },
    rebuild_max_keys: {
      type: 'integer',
      minimum: 1000,
      default: 200000,
      description: "Most of this node's recently logged chunk keys kept in memory to re-mark after Redis lost its memory.",
    },
  },
} as const;

export type RedisDedupeConfig = FromSchema<typeof redisDedupeSchema>;

/** Redis Cluster seeds from `host:port` strings (port 6379 when left out). */
export function clusterSeeds(nodes: readonly string[]): Array<{ host: string; port: number }> {
  return nodes.map((n) => {
    const [host, port] = n.split(':');
    return { host, port: Number(port ?? 6379) };
  });
}

function createClient(r: RedisDedupeConfig['redis']): Redis | Cluster {
  const opts = { enableAutoPipelining: true, commandTimeout: r.command_timeout_ms, maxRetriesPerRequest: 1, lazyConnect: false };
  return r.cluster_nodes?.length
    ? new Cluster(clusterSeeds(r.cluster_nodes), { enableAutoPipelining: true, redisOptions: opts })
    : new Redis(r.url ?? 'redis://127.0.0.1:6379', opts);
}

/** The store's events as metrics and log lines (each with its code). */
function events(config: RedisDedupeConfig, { metrics, logger }: DedupeContext): RedisDedupeEvents {
  const warnEvery = new LogLimiter(10_000);
  return {
    error: (err) => {
      metrics.dedupeUnavailable.inc();
      logger.warn(
        { code: Codes.TRB_DEDUPE_UNAVAILABLE, err: err.message },
        `Redis dedupe failed (${config.on_unavailable}): ${err.message}`,
      );
    },
    stateLost: (reason) => {
      metrics.dedupeStateLost.inc();
      metrics.dedupeRebuilding.set(1);
      logger.warn(
        { code: Codes.TRB_DEDUPE_STATE_LOST, reason },
        `Redis lost the dedupe marks (${reason}); re-marking the chunks in the logs (${config.on_unavailable === 'fail_closed' ? 'no acks until then' : 'fail_open: chunks pass unchecked until then'}).`,
      );
    },
    rebuildFailed: (err) => {
      metrics.dedupeRebuildFailures.inc();
      logger.warn(
        { code: Codes.TRB_DEDUPE_REBUILD, err: err.message },
        `Re-marking the logged chunks in Redis failed; retrying: ${err.message}`,
      );
    },
    waitingForPeers: (nodes) =>
      logger.warn(
        { code: Codes.TRB_DEDUPE_REBUILD, peers: nodes },
        `${nodes.join(', ')} ${nodes.length === 1 ? 'is' : 'are'} alive but did not report re-marking its log within rebuild_wait_ms; fail_closed keeps refusing until it has.`,
      ),
    rebuilt: (rep) => {
      metrics.dedupeRebuilding.set(0);
      if (rep.duplicates) metrics.dedupeDuplicates.inc(rep.duplicates);
      if (rep.missingPeers.length) {
        logger.warn(
          { code: Codes.TRB_DEDUPE_REBUILD, peers: rep.missingPeers },
          `Dedupe marks trusted again after ${rep.ms} ms although ${rep.missingPeers.join(', ')} did not report re-marking its log: resends of its chunks may be written twice.`,
        );
      }
      if (rep.duplicates) {
        logger.warn(
          { code: Codes.TRB_DEDUPE_DUPLICATES, chunks: rep.duplicates },
          `${rep.duplicates} chunk(s) of this node's log were written by another node too while Redis had lost its marks.`,
        );
      }
      logger.info(
        { keys: rep.keys, ms: rep.ms, afterLoss: rep.afterLoss },
        `Marked ${rep.keys} chunks of this node's log done in Redis in ${rep.ms} ms.`,
      );
    },
    unverified: (n) => {
      metrics.dedupeUnverified.inc(n);
      const skipped = warnEvery.admit(Codes.TRB_DEDUPE_UNVERIFIED);
      if (skipped !== null) {
        logger.warn(
          { code: Codes.TRB_DEDUPE_UNVERIFIED, skipped },
          'fail_open: writing chunks while the Redis dedupe marks are being rebuilt; resent ones may be written twice (tributary_aggregator_dedupe_unverified_chunks_total).',
        );
      }
    },
    staleClaims: (n) => {
      metrics.dedupeStaleClaims.inc(n);
      logger.info({ chunks: n }, `Took over ${n} claim(s) a restarted node held on chunks it never logged.`);
    },
  };
}

export const redisDedupe: DedupeSpec<RedisDedupeConfig> = {
  type: 'redis',
  schema: redisDedupeSchema,
  create(config, ctx) {
    const client = ctx.redisClient ?? createClient(config.redis);
    client.on('error', () => {}); // every command's own rejection is handled, counted and logged by the store
    const { log } = ctx;
    const store = new RedisDedupe({
      client,
      ownsClient: ctx.redisClient === undefined,
      node: ctx.node,
      prefix: config.redis.key_prefix,
      claimTtlMs: config.claim_ttl_ms,
      doneTtlMs: config.done_ttl_ms,
      onUnavailable: config.on_unavailable,
      rebuildWaitMs: config.rebuild_wait_ms,
      rebuildMaxKeys: config.rebuild_max_keys,
      // on Kafka every node's chunks are in the topic: a rebuild re-marks its tail too
      logTail: log.kind === 'kafka' ? () => log.recentKeys(config.rebuild_max_keys) : undefined,
      events: events(config, ctx),
    });
    return { store, claimWaitMs: config.claim_wait_ms };
  },
};
