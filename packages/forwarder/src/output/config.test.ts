import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBuffer } from '@tributary/buffer';
import { createRegistry, silentLogger, validateConfig } from '@tributary/core';
import { forwarderConfigSpec } from '../config';
import { createForwarderMetrics } from '../metrics';
import { forwardOutputOptions } from './config';

const ctx = {
  buffer: new MemoryBuffer(
    { maxBytes: 1 << 20, chunkLimitBytes: 1024, flushIntervalMs: 10, overflow: 'block' },
    { maxEntries: 0, ttlMs: 1000 },
  ),
  logger: silentLogger,
  metrics: createForwarderMetrics(createRegistry()),
};

test('the output spec maps servers, timeouts, retry, security and TLS (reading the CA file) to ForwardOutput options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-output-spec-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), 'PEM BYTES');
    const { output } = validateConfig(forwarderConfigSpec, {
      output: {
        servers: [
          { host: 'a', port: 1 },
          { host: 'b', port: 2, weight: 5, standby: true },
        ],
        compress: 'gzip',
        ack_timeout_ms: 1500,
        connect_timeout_ms: 700,
        window: 3,
        max_connection_age_ms: 9000,
        retry: { initial_ms: 10, max_ms: 20, max_attempts: 4, dead_letter_path: '/dl' },
        security: { self_hostname: 'edge', shared_key: 'k', username: 'u', password: 'p' },
        tls: { ca_path: join(dir, 'ca.pem') },
      },
    });
    const { tls, ...options } = forwardOutputOptions(output, ctx);
    expect(options).toEqual({
      servers: [
        { host: 'a', port: 1, weight: 60, standby: false },
        { host: 'b', port: 2, weight: 5, standby: true },
      ],
      buffer: ctx.buffer,
      compress: 'gzip',
      ackTimeoutMs: 1500,
      connectTimeoutMs: 700,
      window: 3,
      maxConnectionAgeMs: 9000,
      retry: { initialMs: 10, maxMs: 20, maxAttempts: 4, deadLetterPath: '/dl' },
      security: { hostname: 'edge', sharedKey: 'k', username: 'u', password: 'p' },
      logger: ctx.logger,
      metrics: ctx.metrics,
    });
    expect(tls?.rejectUnauthorized).toBe(true);
    expect(String(tls?.ca)).toBe('PEM BYTES');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without security or TLS the output gets neither; insecure_skip_verify turns verification off; a missing CA file throws', () => {
  const plain = forwardOutputOptions(validateConfig(forwarderConfigSpec, {}).output, ctx);
  expect(plain.security).toBeUndefined();
  expect(plain.tls).toBeUndefined();
  expect(plain.retry).toEqual({ initialMs: 500, maxMs: 30000, maxAttempts: null, deadLetterPath: null });
  const skip = forwardOutputOptions(validateConfig(forwarderConfigSpec, { output: { tls: { insecure_skip_verify: true } } }).output, ctx);
  expect(skip.tls).toEqual({ ca: undefined, rejectUnauthorized: false });
  const missing = validateConfig(forwarderConfigSpec, { output: { tls: { ca_path: '/nonexistent/ca.pem' } } }).output;
  expect(() => forwardOutputOptions(missing, ctx)).toThrow('ENOENT');
});
