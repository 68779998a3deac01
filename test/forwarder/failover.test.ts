/**
 * Aggregator loss: two receivers, one shut down mid-stream (connections cut
 * with chunks in flight). Delivery continues on the other and nothing acked
 * to the client is lost.
 */
import { rmSync } from 'node:fs';
import { silentLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { produce, startRecordingServer, tempDir, waitFor } from '@tributary/test-kit';

test('one of two aggregators dies mid-stream: delivery continues on the other, nothing acked is lost', async () => {
  const a = await startRecordingServer();
  const b = await startRecordingServer();
  const dir = tempDir('failover');
  const forwarder = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: dir, flush_interval_ms: 50, chunk_limit_bytes: 32 * 1024 },
      output: {
        servers: [
          { host: '127.0.0.1', port: a.port },
          { host: '127.0.0.1', port: b.port },
        ],
        ack_timeout_ms: 2000,
        retry: { initial_ms: 50, max_ms: 1000 },
      },
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  try {
    const producer = produce(forwarder.ports.forward, { perChunk: 100, maxEvents: 60_000 });
    await waitFor(() => a.events.length > 5000 && b.events.length > 5000, 30_000, 'traffic on both receivers');
    await a.server.close(0); // aggregator A gone, in-flight chunks unacked
    const aAtDeath = a.events.length;
    await producer.done;
    expect(producer.stats.acked.size).toBe(60_000);
    const delivered = () => new Set([...a.events, ...b.events].map((e) => e.record.n as number));
    await waitFor(() => delivered().size >= 60_000, 60_000, 'all 60,000 events delivered');
    expect(delivered().size).toBe(60_000);
    expect(b.events.length).toBeGreaterThan(60_000 - aAtDeath - 1);
    // A was marked down (its health flips back to "retry" once the backoff expires, so count failures)
    const metrics = await forwarder.registry.metrics();
    const failures = Number(
      new RegExp(`tributary_forwarder_node_failures_total\\{node="127\\.0\\.0\\.1:${a.port}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0,
    );
    expect(failures).toBeGreaterThan(0);
    console.log(
      `failover: A received ${aAtDeath} before it died, B ${b.events.length}; duplicates ${a.events.length + b.events.length - 60_000}`,
    );
  } finally {
    await forwarder.stop();
    await b.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
});
