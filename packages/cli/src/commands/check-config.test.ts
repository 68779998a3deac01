import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aggregatorConfigSpec } from '@tributary/aggregator';
import { validateConfig } from '@tributary/core';
import { forwarderConfigSpec } from '@tributary/forwarder';
import { checkConfig, limitWarnings } from './check-config';

test('default configs agree across hops: no warning', () => {
  expect(limitWarnings('aggregator', validateConfig(aggregatorConfigSpec, {}))).toEqual([]);
  expect(limitWarnings('forwarder', validateConfig(forwarderConfigSpec, {}))).toEqual([]);
});

test('an aggregator frame or inflate limit below what forwarders send is named', () => {
  const small = limitWarnings('aggregator', validateConfig(aggregatorConfigSpec, { forward: { max_frame_bytes: 1024 * 1024 } }));
  expect(small).toHaveLength(1);
  expect(small[0]).toMatch(/forward\.max_frame_bytes \(1048576\) refuses frames of 2162688 bytes.*retried forever/);
  const middling = limitWarnings(
    'aggregator',
    validateConfig(aggregatorConfigSpec, { forward: { max_frame_bytes: 8 * 1024 * 1024, max_decompressed_bytes: 4 * 1024 * 1024 } }),
  );
  expect(middling).toHaveLength(2);
  expect(middling[0]).toMatch(/chunk_limit_bytes is above 4161536/);
  expect(middling[1]).toMatch(/forward\.max_decompressed_bytes/);
});

test('the forwarder refuses a chunk limit whose chunks the aggregators refuse, and warns on a buffer smaller than a batch', () => {
  expect(() => validateConfig(forwarderConfigSpec, { buffer: { chunk_limit_bytes: 16 * 1024 * 1024 } })).toThrow(/chunk_limit_bytes/);
  const w = limitWarnings(
    'forwarder',
    validateConfig(forwarderConfigSpec, { buffer: { chunk_limit_bytes: 4 * 1024 * 1024, max_bytes: 4 * 1024 * 1024 } }),
  );
  expect(w).toHaveLength(1);
  expect(w[0]).toMatch(/buffer\.max_bytes/);
});

test('check-config prints the warnings after "valid" and exits 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-check-'));
  const file = join(dir, 'agg.yaml');
  writeFileSync(file, 'forward:\n  max_frame_bytes: 1048576\n');
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => {
    lines.push(l);
  });
  try {
    expect(checkConfig(file, 'aggregator')).toBe(0);
  } finally {
    log.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
  expect(lines[0]).toMatch(/valid aggregator configuration/);
  expect(lines[1]).toMatch(/^warning: forward\.max_frame_bytes/);
});

test('an HTTP body limit above the body budget is named (such requests would get 503 forever)', () => {
  const w = limitWarnings(
    'forwarder',
    validateConfig(forwarderConfigSpec, { http: { body_limit_bytes: 64 * 1024 * 1024, max_pending_bytes: 32 * 1024 * 1024 } }),
  );
  expect(w).toHaveLength(1);
  expect(w[0]).toMatch(/http\.body_limit_bytes \(67108864\) is above http\.max_pending_bytes/);
  expect(limitWarnings('aggregator', validateConfig(aggregatorConfigSpec, { http: { body_limit_bytes: 64 * 1024 * 1024 } }))).toEqual([]);
});
