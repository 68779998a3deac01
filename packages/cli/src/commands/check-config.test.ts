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

/** check-config on a config file of `role` (the aggregator's unless named) holding `yaml`: its exit code and what it printed. */
const run = (yaml: string, role: 'aggregator' | 'forwarder' = 'aggregator') => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-check-'));
  const file = join(dir, 'agg.yaml');
  writeFileSync(file, yaml);
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => {
    out.push(l);
  });
  const error = jest.spyOn(console, 'error').mockImplementation((l: string) => {
    err.push(l);
  });
  try {
    return { code: checkConfig(file, role), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
};
describe('sink keys are checked against their own type', () => {
  const sinkOnly = (sink: string) => `egress:\n  routes: [{ match: '**', sinks: [a] }]\nsinks:\n  - ${sink}\n`;

  test('a key of another sink type is rejected with its path, once', () => {
    const r = run(sinkOnly('{ name: a, type: file, path: /tmp/x, bucket: x }'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('sinks[0].bucket: unknown key');
    expect(r.err.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(1);
  });

  test('`{type: file, bucket: x}` names both the misplaced key and the missing one', () => {
    const r = run(sinkOnly('{ name: a, type: file, bucket: x }'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('sinks[0].bucket: unknown key');
    expect(r.err).toContain('sinks[0].path: required key is missing');
  });

  test('a route to a sink that does not exist, and a sink name used twice, are named with their paths', () => {
    const r = run(
      "egress:\n  routes: [{ match: '**', sinks: [a, nope] }]\nsinks:\n  - { name: a, type: file, path: /tmp/x }\n  - { name: a, type: file, path: /tmp/y }\n",
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('egress.routes[0].sinks[1]: no sink is named "nope"');
    expect(r.err).toContain('sinks[1].name: "a" is used by another sink');
  });

  test('an unknown sink type lists the registered ones', () => {
    const r = run(sinkOnly('{ name: a, type: loki, url: x }'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('sinks[0].type: must be one of "file", "aws_s3", "aws_firehose"');
    expect(r.err).not.toContain('url');
  });

  test('AWS defaults are filled in for AWS sinks only, and check-config lists the sinks', () => {
    const r = run(sinkOnly('{ name: a, type: file, path: /tmp/x }'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('sinks: a (file); sink types: file, aws_s3, aws_firehose.');
    const config = validateConfig(aggregatorConfigSpec, { sinks: [{ name: 'file', type: 'file', path: '/tmp/x' }] });
    expect(config.sinks[0]).toEqual({ name: 'file', type: 'file', path: '/tmp/x', gzip_level: 1 });
    const s3 = validateConfig(aggregatorConfigSpec, {
      egress: { routes: [{ match: '**', sinks: ['s3'] }] },
      sinks: [{ name: 's3', type: 'aws_s3', bucket: 'b' }],
    });
    expect(s3.sinks[0]).toEqual({
      name: 's3',
      type: 'aws_s3',
      bucket: 'b',
      prefix: 'logs',
      force_path_style: false,
      gzip_level: 1,
      region: 'us-east-1',
    });
  });
});

describe('log and dedupe keys are checked against their own type', () => {
  test('a key of another log type is rejected with its path; an unknown type lists the registered ones', () => {
    const misplaced = run('log:\n  type: embedded\n  kafka: { brokers: ["b1:9092"] }\n');
    expect(misplaced.code).toBe(1);
    expect(misplaced.err.split('\n').filter((l) => l.startsWith('  - '))).toEqual(['  - log.kafka: unknown key']);
    const kafkaWithPath = run('log:\n  type: kafka\n  path: /var/lib/trb\n  kafka: { brokers: ["b1:9092"] }\n');
    expect(kafkaWithPath.err).toContain('log.path: unknown key');
    expect(run('log: { type: postgres }\n').err).toContain('log.type: must be one of "embedded", "kafka"');
  });

  test('a key of another dedupe type is rejected with its path; every problem is reported', () => {
    const r = run(
      'dedupe:\n  type: embedded\n  on_unavailable: fail_closed\n  redis: { url: "redis://r:6379" }\nlog: { kafka: { brokers: [b] } }\n',
    );
    expect(r.code).toBe(1);
    expect(
      r.err
        .split('\n')
        .filter((l) => l.startsWith('  - '))
        .sort(),
    ).toEqual(['  - dedupe.on_unavailable: unknown key', '  - dedupe.redis: unknown key', '  - log.kafka: unknown key']);
    expect(run('dedupe: { type: memcached }\n').err).toContain('dedupe.type: must be one of "embedded", "redis", "none"');
  });

  test('the keys of the chosen types are accepted', () => {
    const r = run(
      'dedupe: { type: redis, redis: { url: "redis://r:6379" }, on_unavailable: fail_closed }\nlog: { type: kafka, kafka: { brokers: [b1] } }\n',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('buffer keys are checked against their own type', () => {
  test('a disk-only key on a memory buffer is rejected naming buffer.path; an unknown type lists the registered ones', () => {
    const r = run('buffer: { type: memory, path: x }\n', 'forwarder');
    expect(r.code).toBe(1);
    expect(r.err.split('\n').filter((l) => l.startsWith('  - '))).toEqual(['  - buffer.path: unknown key']);
    expect(run('buffer: { type: tape }\n', 'forwarder').err).toContain('buffer.type: must be one of "disk", "memory"');
  });

  test("the chosen type's keys are accepted, and an absent type is the disk buffer", () => {
    const disk = run('buffer: { path: /tmp/trb-buf, fsync: always, memory_cache_bytes: 0 }\n', 'forwarder');
    expect(disk.err).toBe('');
    expect(disk.code).toBe(0);
    expect(validateConfig(forwarderConfigSpec, {}).buffer.type).toBe('disk');
    const memory = run('buffer: { type: memory, max_bytes: 2097152, overflow: drop_oldest }\n', 'forwarder');
    expect(memory.err).toBe('');
    expect(memory.code).toBe(0);
  });
});

test('check-config names the filter and key of a bad, catastrophic or misplaced filter, and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-check-'));
  const fwd = join(dir, 'fwd.yaml');
  const agg = join(dir, 'agg.yaml');
  writeFileSync(
    fwd,
    [
      'filters:',
      '  - type: grep',
      '    regexp: [{ key: message, pattern: "(" }]',
      '  - type: mask',
      '    patterns: ["ok", "(a|aa)+$"]',
      '  - type: parser',
      '    key_name: log',
      '    format: regex',
      "    pattern: '^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\]'",
      '',
    ].join('\n'),
  );
  writeFileSync(agg, 'filters:\n  - type: throttle\n    limit: 10\n');
  const errors: string[] = [];
  const err = jest.spyOn(console, 'error').mockImplementation((l: string) => {
    errors.push(l);
  });
  const log = jest.spyOn(console, 'log').mockImplementation(() => {});
  try {
    expect(checkConfig(fwd, 'forwarder')).toBe(1);
    expect(checkConfig(agg, 'aggregator')).toBe(1);
  } finally {
    err.mockRestore();
    log.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
  expect(errors[0]).toMatch(/filters\[0\]\.regexp\[0\]\.pattern: the regex "\(" does not compile/);
  expect(errors[0]).toMatch(/filters\[1\]\.patterns\[1\]: the regex "\(a\|aa\)\+\$" is prone to catastrophic backtracking, exponential/);
  expect(errors[0]).not.toMatch(/filters\[2\]/); // Fluentd's Apache-style regex (polynomial) is allowed in a parser
  expect(errors[1]).toMatch(/filters\[0\]\.type: throttle is not deterministic/);
});
