import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AggregatorConfig, aggregatorConfigSpec } from '@tributary/aggregator';
import { validateConfig } from '@tributary/core';
import { type ForwarderConfig, forwarderConfigSpec } from '@tributary/forwarder';
import { checkConfig, timeoutWarnings } from './check-config';

const agg = (dedupe: Record<string, unknown>) =>
  validateConfig(aggregatorConfigSpec, { dedupe, sinks: [{ name: 'file', type: 'file', path: '/tmp/x' }] }) as AggregatorConfig;
const fwd = (ackTimeoutMs: number) => validateConfig(forwarderConfigSpec, { output: { ack_timeout_ms: ackTimeoutMs } }) as ForwarderConfig;

test('warns when the claim wait plus the Redis command timeout is not below the forwarders ack timeout', () => {
  // The case: a 1 s command timeout against a 300 ms ack timeout.
  const redis = {
    type: 'redis',
    redis: { url: 'redis://r:6379', command_timeout_ms: 1000 },
    claim_wait_ms: 0,
    on_unavailable: 'fail_open',
  };
  const [w] = timeoutWarnings(agg(redis), fwd(300));
  expect(w).toMatch(/1000 ms before it acks/);
  expect(w).toMatch(/ack_timeout_ms \(300\)/);
  expect(w).toMatch(/fail_open a Redis outage writes them twice/);
  // Defaults (claim wait 5 s + 1 s) against the default 30 s ack timeout: fine.
  expect(timeoutWarnings(agg({ type: 'redis', redis: { url: 'redis://r:6379' } }), fwd(30_000))).toEqual([]);
  expect(timeoutWarnings(agg({ type: 'redis', redis: { url: 'redis://r:6379' } }), fwd(6000))).toHaveLength(1);
  expect(timeoutWarnings(agg({ type: 'embedded', claim_wait_ms: 5000 }), fwd(5000))).toHaveLength(1);
  expect(timeoutWarnings(agg({ type: 'none' }), fwd(100))).toEqual([]);
});

test('check-config --with prints the warning for an aggregator and a forwarder config together', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-check-'));
  const log = jest.spyOn(console, 'log').mockImplementation(() => {});
  try {
    writeFileSync(
      join(dir, 'agg.yaml'),
      'dedupe: { type: redis, redis: { url: "redis://r:6379", command_timeout_ms: 1000 } }\nsinks: [{ name: file, type: file, path: /tmp/x }]\n',
    );
    writeFileSync(join(dir, 'fwd.yaml'), 'output: { ack_timeout_ms: 300 }\n');
    expect(checkConfig(join(dir, 'agg.yaml'), 'aggregator', join(dir, 'fwd.yaml'))).toBe(0);
    expect(checkConfig(join(dir, 'fwd.yaml'), 'forwarder', join(dir, 'agg.yaml'))).toBe(0);
    const warnings = log.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith('warning: the aggregator may hold'));
    expect(warnings).toHaveLength(2);
  } finally {
    log.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
});
