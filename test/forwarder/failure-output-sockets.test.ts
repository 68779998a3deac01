import { rmSync } from 'node:fs';
/**
 * Issue 11, item 5, forward output: socket errors toward aggregators are
 * counted and logged, and "closed with requests in flight" is said only when
 * something was in flight (an aggregator closing an idle connection is worded
 * as that).
 */
import { type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { produce, startRecordingServer, tempDir, waitFor } from '@tributary/test-kit';

/** A TCP server that applies `onSocket` to every connection. */
async function rawServer(onSocket: (s: Socket) => void) {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function start(dir: string, port: number, lines: string[]) {
  return Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: join(dir, 'buf'), flush_interval_ms: 50 },
      output: { servers: [{ host: '127.0.0.1', port }], ack_timeout_ms: 2000, retry: { initial_ms: 50, max_ms: 200 } },
      metrics: { port: 0 },
      shutdown_grace_ms: 200,
    }),
    createLogger('test', 'info', { write: (line: string) => lines.push(line) }),
  );
}

test('an aggregator closing an idle connection is not logged as closing with requests in flight', async () => {
  // Accepts, then closes each connection 100 ms later without a byte exchanged.
  const idle = await rawServer((s) => setTimeout(() => s.end(), 100));
  const dir = tempDir('idleclose');
  const lines: string[] = [];
  const fwd = await start(dir, idle.port, lines);
  try {
    await waitFor(() => lines.some((l) => l.includes('TRB_OUT_NODE_DOWN')), 5000, 'the close logged');
    const down = lines.filter((l) => l.includes('TRB_OUT_NODE_DOWN'));
    expect(down.join('\n')).toMatch(/closed by the aggregator with nothing in flight/);
    expect(down.join('\n')).not.toMatch(/requests in flight/);
    expect(await fwd.registry.metrics()).not.toMatch(/tributary_forwarder_output_socket_errors_total\{[^}]*\} [1-9]/);
  } finally {
    await fwd.stop();
    await idle.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connection reset with a chunk in flight is counted and logged as a socket error; the chunk is delivered after', async () => {
  // The first connection that sends data is reset; later ones go to a recording server through a tiny proxy.
  const receiver = await startRecordingServer();
  let resets = 0;
  const flaky = await rawServer((s) => {
    if (resets === 0) {
      s.once('data', () => {
        resets++;
        s.resetAndDestroy();
      });
      return;
    }
    const up = connect(receiver.port, '127.0.0.1');
    up.on('error', () => s.destroy());
    s.pipe(up).pipe(s);
  });
  const dir = tempDir('reset');
  const lines: string[] = [];
  const fwd = await start(dir, flaky.port, lines);
  try {
    const producer = produce(fwd.ports.forward, { perChunk: 10, maxEvents: 50 });
    await producer.done;
    await waitFor(() => new Set(receiver.events.map((e) => e.record.n)).size >= 50, 15_000, 'every event delivered after the reset');
    expect(resets).toBe(1);
    expect(await fwd.registry.metrics()).toMatch(/tributary_forwarder_output_socket_errors_total\{node="127\.0\.0\.1:\d+"\} [1-9]/);
    expect(lines.join('\n')).toMatch(/TRB_OUT_NODE_DOWN.*(ECONNRESET|failed)/);
  } finally {
    await fwd.stop();
    await flaky.close();
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
});
