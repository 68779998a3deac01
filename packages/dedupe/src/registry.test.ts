import { ConfigError, findSpec, silentLogger, validateConfig } from '@tributary/core';
import { testDedupeMetrics } from './__fixtures__/metrics';
import { embeddedDedupe } from './embedded-spec';
import { noDedupe } from './none-spec';
import { dedupeConfigSpec, dedupeRegistry } from './registry';
import type { DedupeLogView } from './spec';

const problems = (input: Record<string, unknown>): string[] => {
  try {
    validateConfig(dedupeConfigSpec, input);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems ?? [];
    throw err;
  }
  return [];
};
const dedupeOf = (dedupe?: Record<string, unknown>) => validateConfig(dedupeConfigSpec, dedupe ? { dedupe } : {}).dedupe;

test('an absent dedupe, an empty one, or one without a type is the embedded store with its defaults', () => {
  const defaults = { type: 'embedded', done_ttl_ms: 259200000, claim_wait_ms: 5000, max_entries: 2000000 };
  expect(dedupeOf()).toEqual(defaults);
  expect(dedupeOf({})).toEqual(defaults);
  expect(dedupeOf({ max_entries: 5000 })).toEqual({ ...defaults, max_entries: 5000 });
  expect(dedupeOf({ type: 'none' })).toEqual({ type: 'none' });
  expect(dedupeOf({ type: 'redis', redis: { url: 'redis://r:6379' } })).toEqual({
    type: 'redis',
    redis: { url: 'redis://r:6379', key_prefix: 'trb:dd:', command_timeout_ms: 1000 },
    claim_ttl_ms: 30000,
    done_ttl_ms: 259200000,
    claim_wait_ms: 5000,
    on_unavailable: 'fail_open',
    rebuild_wait_ms: 10000,
    rebuild_max_keys: 200000,
  });
});

test("a key of another dedupe type is rejected with its path, the type's own keys are not", () => {
  expect(problems({ dedupe: { type: 'embedded', redis: { url: 'redis://r:6379' } } })).toEqual(['dedupe.redis: unknown key']);
  expect(problems({ dedupe: { on_unavailable: 'fail_closed' } })).toEqual(['dedupe.on_unavailable: unknown key']);
  expect(problems({ dedupe: { type: 'redis', redis: { url: 'redis://r:6379' }, max_entries: 5000 } })).toEqual([
    'dedupe.max_entries: unknown key',
  ]);
  expect(problems({ dedupe: { type: 'none', claim_wait_ms: 100 } })).toEqual(['dedupe.claim_wait_ms: unknown key']);
  expect(problems({ dedupe: { type: 'redis', redis: { host: 'r' } } })).toEqual(['dedupe.redis.host: unknown key']);
  expect(problems({ dedupe: { type: 'redis' } })).toEqual(['dedupe.redis: set url or cluster_nodes when dedupe.type is redis']);
});

test('an unknown dedupe type names the known ones', () => {
  expect(problems({ dedupe: { type: 'memcached' } })).toEqual(['dedupe.type: must be one of "embedded", "redis", "none"']);
  expect(() => findSpec(dedupeRegistry, 'memcached', 'dedupe')).toThrow(
    'No dedupe type "memcached" is registered (known: embedded, redis, none).',
  );
});

const ctx = () => ({
  logger: silentLogger,
  metrics: testDedupeMetrics(),
  node: 'n1',
  log: { kind: 'embedded' } as DedupeLogView,
});

test("the embedded spec's create maps the config to the store: its claim wait and how many marks it keeps", async () => {
  const config = dedupeOf({ claim_wait_ms: 250, max_entries: 1000 });
  if (config.type !== 'embedded') throw new Error('expected the embedded store');
  const { store, claimWaitMs } = embeddedDedupe.create(config, ctx());
  expect(claimWaitMs).toBe(250);
  if (!store) throw new Error('expected a store');
  expect(store.kind).toBe('embedded');
  // 1001 logged keys into a store of 1000 marks: the oldest is forgotten, the newest is done
  await store.start(Array.from({ length: 1001 }, (_, i) => `k${i}`));
  expect(await store.claim(['k0', 'k1000'])).toEqual(['claimed', 'done']);
  await store.close();
});

test("the none spec's create makes no store and no claim wait", () => {
  expect(noDedupe.create({ type: 'none' }, ctx())).toEqual({ store: null, claimWaitMs: 0 });
});
