/**
 * Forward output policies: standby nodes take over only when no primary is
 * healthy; connections are rotated after max_connection_age_ms; a chunk that
 * failed max_attempts times goes to the dead-letter directory.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@tributary/core';
import { FrameDecoder, decodeEntries, parseRequest } from '@tributary/forward-protocol';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { produce, startRecordingServer, tempDir, waitFor } from '@tributary/test-kit';

function forwarder(dir: string, output: Record<string, unknown>) {
  return Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: join(dir, 'buf'), flush_interval_ms: 50, chunk_limit_bytes: 16 * 1024 },
      output: { retry: { initial_ms: 50, max_ms: 200 }, ack_timeout_ms: 1000, ...output },
      metrics: { port: 0 },
      shutdown_grace_ms: 500,
    }),
    silentLogger,
  );
}

test('standby takes over only while the primary is down', async () => {
  const primary = await startRecordingServer();
  const standby = await startRecordingServer();
  const dir = tempDir('standby');
  const fwd = await forwarder(dir, {
    servers: [
      { host: '127.0.0.1', port: primary.port },
      { host: '127.0.0.1', port: standby.port, standby: true },
    ],
  });
  try {
    const first = produce(fwd.ports.forward, { perChunk: 100, maxEvents: 5000 });
    await first.done;
    await waitFor(() => primary.events.length >= 5000, 10_000, 'events at the primary');
    expect(standby.events).toHaveLength(0);
    await primary.server.close(0);
    const second = produce(fwd.ports.forward, { perChunk: 100, maxEvents: 5000, firstId: 10_000 });
    await second.done;
    await waitFor(() => standby.events.length >= 5000, 15_000, 'events at the standby');
    expect(new Set(standby.events.map((e) => e.record.n)).size).toBe(5000);
  } finally {
    await fwd.stop();
    await standby.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connections are rotated after max_connection_age_ms without losing events', async () => {
  const receiver = await startRecordingServer();
  const dir = tempDir('rotate');
  const fwd = await forwarder(dir, { servers: [{ host: '127.0.0.1', port: receiver.port }], max_connection_age_ms: 1000 });
  try {
    const p = produce(fwd.ports.forward, { perChunk: 50, maxEvents: 20_000, pauseMs: 5 });
    await p.done;
    await waitFor(() => receiver.events.length >= 20_000, 20_000, 'all events');
    const metrics = await fwd.registry.metrics();
    const rotations = Number(/tributary_forwarder_connection_rotations_total (\d+)/.exec(metrics)?.[1]);
    expect(rotations).toBeGreaterThan(0);
    expect(new Set(receiver.events.map((e) => e.record.n)).size).toBe(20_000);
  } finally {
    await fwd.stop();
    await receiver.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after max_attempts a chunk goes to the dead-letter directory, counted', async () => {
  const refusing = await startRecordingServer({
    consume: async () => {
      throw new Error('refused for the test');
    },
  });
  const dir = tempDir('dead');
  const fwd = await forwarder(dir, {
    servers: [{ host: '127.0.0.1', port: refusing.port }],
    retry: { initial_ms: 20, max_ms: 50, max_attempts: 3, dead_letter_path: join(dir, 'dead') },
  });
  try {
    await produce(fwd.ports.forward, { perChunk: 10, maxEvents: 10 }).done;
    await waitFor(
      () =>
        readdirSync(join(dir), { withFileTypes: true }).some((d) => d.name === 'dead')
          ? readdirSync(join(dir, 'dead')).some((f) => f.endsWith('.msgpack'))
          : false,
      15_000,
      'a dead-letter file',
    );
    const [file] = readdirSync(join(dir, 'dead')).filter((f) => f.endsWith('.msgpack'));
    const chunk = parseRequest(new FrameDecoder().push(readFileSync(join(dir, 'dead', file)))[0]);
    expect(decodeEntries(chunk.entries).map((e) => e.record.n)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const metrics = await fwd.registry.metrics();
    expect(metrics).toMatch(/tributary_forwarder_dead_letter_events_total\{outcome="written"\} 10/);
    expect(fwd.buffer.stats().events).toBe(0);
  } finally {
    await fwd.stop();
    await refusing.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});
