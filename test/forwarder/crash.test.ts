/**
 * Crash test: while events stream in, the forwarder process is killed with
 * SIGKILL, restarted on the same buffer directory, and left to drain. Every
 * event that was acked to the client must reach the receiver; how many were
 * delivered twice (resent after the restart) is reported.
 */
import { rmSync } from 'node:fs';
import { type Started, exited, freePort, produce, startRecordingServer, startRole, tempDir, waitFor } from '@tributary/test-kit';

test('kill -9 mid-stream, restart, drain: every acked event is delivered', async () => {
  const receiver = await startRecordingServer();
  const dir = tempDir('crash');
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = {
    forward: { port: forwardPort, udp_heartbeat: false },
    http: { enabled: false },
    buffer: { path: `${dir}/buffer`, flush_interval_ms: 500, chunk_limit_bytes: 256 * 1024 },
    output: { servers: [{ host: '127.0.0.1', port: receiver.port }], ack_timeout_ms: 5000, retry: { initial_ms: 50, max_ms: 500 } },
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
  const started: Started[] = [];
  try {
    const first = await startRole('forwarder', config, dir, metricsPort);
    started.push(first);
    const producer = produce(forwardPort, { perChunk: 50, maxEvents: 1_000_000 });
    await waitFor(() => producer.stats.acked.size >= 20_000, 30_000, '20,000 acked events before the kill');
    first.child.kill('SIGKILL');
    await exited(first.child);
    const atKill = receiver.events.length;
    await producer.stop();
    const acked = new Set(producer.stats.acked);
    expect(acked.size).toBeGreaterThanOrEqual(20_000);

    const second = await startRole('forwarder', config, dir, metricsPort);
    started.push(second);
    const delivered = () => new Set(receiver.events.map((e) => e.record.n as number));
    await waitFor(
      () => {
        const got = delivered();
        return [...acked].every((n) => got.has(n));
      },
      60_000,
      'every acked event at the receiver',
    );
    const got = delivered();
    const lost = [...acked].filter((n) => !got.has(n));
    expect(lost).toEqual([]);
    const counts = new Map<number, number>();
    for (const e of receiver.events) counts.set(e.record.n as number, (counts.get(e.record.n as number) ?? 0) + 1);
    const resent = [...counts.values()].filter((c) => c > 1).length;
    const fromDisk = receiver.events.length - atKill;
    // Events were acked to the client but still on the forwarder's disk at the kill.
    expect(fromDisk).toBeGreaterThan(0);
    console.log(
      `crash test: ${acked.size} events acked before kill -9, all delivered; ${fromDisk} of them delivered after the restart from the disk buffer; ${resent} delivered twice (resent after restart)`,
    );
    second.child.kill('SIGTERM');
    expect(await exited(second.child)).toBe(0);
  } finally {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);
