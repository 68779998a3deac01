/**
 * The redis spec's create on a real redis-server (started here on a free
 * loopback port): the config's keys reach the store (prefix, claim TTL, node,
 * claim wait), a client is made from `redis.url` when none is injected (and
 * closed with the store, while an injected one is left to its owner), and
 * an unreachable Redis shows in the dedupe metric and a coded log line.
 */
import { createLogger, validateConfig } from '@tributary/core';
import { freePort, startRedis } from '@tributary/test-kit';
import Redis from 'ioredis';
import { testDedupeMetrics } from './__fixtures__/metrics';
import { clusterSeeds, redisDedupe } from './redis-spec';
import { dedupeConfigSpec } from './registry';
import type { DedupeLogView } from './spec';

const redisConfig = (dedupe: Record<string, unknown>) => {
  const config = validateConfig(dedupeConfigSpec, { dedupe: { type: 'redis', ...dedupe } }).dedupe;
  if (config.type !== 'redis') throw new Error('expected the redis store');
  return config;
};

function context(redisClient?: Redis) {
  const lines: Array<{ code?: string; msg: string }> = [];
  const logger = createLogger('test', 'info', { write: (s: string) => lines.push(JSON.parse(s)) });
  const metrics = testDedupeMetrics();
  return { lines, metrics, ctx: { logger, metrics, node: 'node-a', log: { kind: 'embedded' } as DedupeLogView, redisClient } };
}

test("the redis spec's create maps the config to the store: prefix, claim TTL, node and claim wait; the injected client is used", async () => {
  const redis = await startRedis();
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const probe = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  // the url is a dead one: only the injected client can reach this Redis
  const config = redisConfig({ redis: { url: 'redis://127.0.0.1:1', key_prefix: 'trb:spec:' }, claim_ttl_ms: 4000, claim_wait_ms: 750 });
  const { ctx } = context(client);
  const { store, claimWaitMs } = redisDedupe.create(config, ctx);
  try {
    expect(claimWaitMs).toBe(750);
    if (!store) throw new Error('expected a store');
    expect(store.kind).toBe('redis');
    await store.start(['logged-1']);
    expect(await store.claim(['fresh-1', 'logged-1'])).toEqual(['claimed', 'done']);
    const ttl = await probe.pttl('trb:spec:fresh-1');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(4000);
    expect(await probe.get('trb:spec:fresh-1')).toMatch(/^c:node-a:/);
    expect(await probe.get('trb:spec:logged-1')).toBe('d:node-a');
    // the injected client is the embedder's: closing the store leaves it connected
    await store.close();
    expect(await client.ping()).toBe('PONG');
  } finally {
    await store?.close();
    client.disconnect();
    probe.disconnect();
    await redis.stop();
  }
});

test('without an injected client the store connects to redis.url', async () => {
  const redis = await startRedis();
  const probe = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
  const { ctx } = context();
  const { store } = redisDedupe.create(redisConfig({ redis: { url: redis.url, key_prefix: 'trb:url:' } }), ctx);
  try {
    if (!store) throw new Error('expected a store');
    await store.start([]);
    expect(await store.claim(['k1'])).toEqual(['claimed']);
    expect(await probe.get('trb:url:k1')).toMatch(/^c:node-a:/);
    // the client the store made is its own: closing the store disconnects it
    const clients = async () => ((await probe.client('LIST')) as string).trim().split('\n').length;
    expect(await clients()).toBe(2);
    await store.close();
    const deadline = Date.now() + 5000;
    while ((await clients()) > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await clients()).toBe(1);
  } finally {
    await store?.close();
    probe.disconnect();
    await redis.stop();
  }
});

test('a Redis that cannot be reached counts in tributary_aggregator_dedupe_unavailable_total and logs TRB_DEDUPE_UNAVAILABLE; fail_closed refuses', async () => {
  const dead = await freePort();
  const { ctx, lines, metrics } = context();
  const config = redisConfig({
    redis: { url: `redis://127.0.0.1:${dead}`, command_timeout_ms: 100 },
    on_unavailable: 'fail_closed',
    rebuild_wait_ms: 0,
  });
  const { store } = redisDedupe.create(config, ctx);
  try {
    if (!store) throw new Error('expected a store');
    await store.start([]);
    await expect(store.claim(['k1'])).rejects.toMatchObject({ code: 'TRB_DEDUPE_UNAVAILABLE' });
    const [count] = (await metrics.dedupeUnavailable.get()).values;
    expect(count.value).toBeGreaterThanOrEqual(1);
    expect(lines.some((l) => l.code === 'TRB_DEDUPE_UNAVAILABLE' && /^Redis dedupe failed \(fail_closed\)/.test(l.msg))).toBe(true);
  } finally {
    await store?.close();
  }
});

test('cluster seeds are host:port strings, port 6379 when left out', () => {
  expect(clusterSeeds(['10.0.0.1:7000', 'redis-b'])).toEqual([
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b', port: 6379 },
  ]);
});
