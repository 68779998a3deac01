/**
 * TLS and shared-key auth on both hops: fluent-logger (TLS + shared key) →
 * forwarder (TLS input with security) → aggregator (TLS input with security,
 * forwarder verifies its certificate). Every event lands once; a forwarder
 * with the wrong key delivers nothing and marks the node down.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { countIds, readOutput, tempDir, waitFor } from '@tributary/test-kit';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

test('TLS + shared key on app → forwarder → aggregator', async () => {
  const dir = tempDir('tls');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    {
      stdio: 'ignore',
    },
  );
  const tls = { cert_path: cert, key_path: key };
  const security = { self_hostname: 'aggregator.test', shared_key: 'agg-key' };
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false, tls, security },
      log: { path: join(dir, 'log') },
      egress: { max_wait_ms: 50 },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  const forwarderWith = (sharedKey: string, sub: string) =>
    Forwarder.start(
      validateConfig(forwarderConfigSpec, {
        forward: { port: 0, udp_heartbeat: false, tls, security: { self_hostname: 'edge.test', shared_key: 'app-key' } },
        http: { enabled: false },
        buffer: { path: join(dir, sub), flush_interval_ms: 50 },
        output: {
          servers: [{ host: '127.0.0.1', port: agg.ports.forward }],
          tls: { ca_path: cert },
          security: { self_hostname: 'edge.test', shared_key: sharedKey },
          retry: { initial_ms: 50, max_ms: 500 },
        },
        metrics: { port: 0 },
        shutdown_grace_ms: 500,
      }),
      silentLogger,
    );
  const good = await forwarderWith('agg-key', 'buf-good');
  const bad = await forwarderWith('wrong-key', 'buf-bad');
  try {
    const N = 500;
    for (const [fwd, tag] of [
      [good, 'good'],
      [bad, 'bad'],
    ] as const) {
      const sender = fluent.createFluentSender(tag, {
        host: '127.0.0.1',
        port: fwd.ports.forward,
        tls: true,
        tlsOptions: { ca: readFileSync(cert) },
        security: { clientHostname: 'app.test', sharedKey: 'app-key' },
        requireAckResponse: true,
        ackResponseTimeout: 10_000,
        internalLogger: { info() {}, error() {} },
      });
      await Promise.all(
        Array.from(
          { length: N },
          (_, n) => new Promise<void>((resolve, reject) => sender.emit('tls', { n }, (err?: Error) => (err ? reject(err) : resolve()))),
        ),
      );
      sender.end();
    }
    await waitFor(() => readOutput(join(dir, 'out')).lines.length >= N, 20_000, 'events over TLS');
    let failures = 0;
    const countFailures = async () => {
      failures = Number(/tributary_forwarder_node_failures_total\{[^}]*\} (\d+)/.exec(await bad.registry.metrics())?.[1] ?? 0);
    };
    for (let i = 0; i < 100 && failures === 0; i++) {
      await countFailures();
      if (failures === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(failures).toBeGreaterThan(0); // the wrong-key forwarder marked the node down
    const { lines } = readOutput(join(dir, 'out'));
    expect(countIds(lines)).toEqual({ ids: N, duplicates: [] });
    expect(lines.every((l) => l._tag === 'good.tls')).toBe(true);
    expect(bad.buffer.stats().events).toBe(N); // kept, not lost: waits for a correct key
  } finally {
    await good.stop();
    await bad.stop();
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
