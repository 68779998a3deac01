import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, findSpec, silentLogger, validateConfig } from '@tributary/core';
import { embeddedLog } from './embedded-spec';
import { logConfigSpec, logRegistry } from './registry';

const problems = (input: Record<string, unknown>): string[] => {
  try {
    validateConfig(logConfigSpec, input);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems ?? [];
    throw err;
  }
  return [];
};
const logOf = (input: Record<string, unknown>) => validateConfig(logConfigSpec, input).log;
const embeddedConfig = (log: Record<string, unknown>) => {
  const config = logOf({ log });
  if (config.type !== 'embedded') throw new Error('expected the embedded log');
  return config;
};

test('an absent log, an empty one, or one without a type is the embedded log with its defaults', () => {
  const defaults = {
    type: 'embedded',
    path: './data/aggregator-log',
    segment_bytes: 67108864,
    retention_bytes: 10737418240,
    retention_ms: 259200000,
    max_backlog_bytes: 268435456,
  };
  expect(logOf({})).toEqual(defaults);
  expect(logOf({ log: {} })).toEqual(defaults);
  expect(logOf({ log: { path: '/var/lib/trb' } })).toEqual({ ...defaults, path: '/var/lib/trb' });
});

test('a kafka log gets its own defaults and none of the embedded keys', () => {
  const log = logOf({ log: { type: 'kafka', kafka: { brokers: ['b1:9092'] } } });
  expect(log).toEqual({
    type: 'kafka',
    kafka: expect.objectContaining({ brokers: ['b1:9092'], topic: 'tributary-chunks', partitions: 12, compression: 'gzip' }),
  });
  expect(log).not.toHaveProperty('path');
});

test("a key of another log type is rejected with its path, the type's own keys are not", () => {
  expect(problems({ log: { type: 'embedded', kafka: { brokers: ['b1:9092'] } } })).toEqual(['log.kafka: unknown key']);
  expect(problems({ log: { kafka: { brokers: ['b1:9092'] } } })).toEqual(['log.kafka: unknown key']);
  expect(problems({ log: { type: 'kafka', path: '/x', kafka: { brokers: ['b1:9092'] } } })).toEqual(['log.path: unknown key']);
  expect(problems({ log: { type: 'kafka', max_backlog_bytes: 0, kafka: { brokers: ['b1:9092'] } } })).toEqual([
    'log.max_backlog_bytes: unknown key',
  ]);
  expect(problems({ log: { type: 'kafka', kafka: { brokers: ['b1:9092'], path: '/x' } } })).toEqual(['log.kafka.path: unknown key']);
  expect(problems({ log: { type: 'kafka' } })).toEqual(['log.kafka: required key is missing']);
});

test('an unknown log type names the known ones', () => {
  expect(problems({ log: { type: 'postgres' } })).toEqual(['log.type: must be one of "embedded", "kafka"']);
  expect(() => findSpec(logRegistry, 'postgres', 'log')).toThrow('No log type "postgres" is registered (known: embedded, kafka).');
});

test("the embedded spec's create maps the config to the log: its directory, segment size and backlog bound", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-log-spec-'));
  const record = (key: string) => ({ tag: 't', key, count: 1, entries: Buffer.alloc(700, 1) });
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  /** Appends the records one by one to a log made from `log` and counts the files in its segment directory. */
  const segmentFiles = async (log: Record<string, unknown>) => {
    const config = embeddedConfig(log);
    const part = embeddedLog.create(config, { logger: silentLogger });
    await part.log.start();
    for (const key of keys) await part.log.append([record(key)]);
    await part.log.close();
    return { files: readdirSync(join(config.path, 'segments')).length, maxBacklogBytes: part.maxBacklogBytes };
  };
  try {
    const small = await segmentFiles({ path: join(dir, 'small'), segment_bytes: 1024, max_backlog_bytes: 12345 });
    const large = await segmentFiles({ path: join(dir, 'large') });
    // 700-byte records: a 1024-byte segment holds two, the default 64 MiB one all six
    expect(small.files).toBeGreaterThan(large.files);
    expect(small.maxBacklogBytes).toBe(12345);
    expect(large.maxBacklogBytes).toBe(268435456);
    // the log at that path is the one reopened: its keys come back for dedupe
    const again = embeddedLog.create(embeddedConfig({ path: join(dir, 'small') }), { logger: silentLogger }).log;
    await again.start();
    expect(again.recoveredKeys?.()).toEqual(keys);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
