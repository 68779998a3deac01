/**
 * Issue 11, item 4: a dead-letter directory that cannot be written used to
 * make the forwarder exit with an unhandled rejection (ForwardOutput.chunkFailed),
 * and the crash repeated after every restart. Now the chunk stays buffered and
 * is retried, the failure is counted, logged and shown in /readyz, and once the
 * directory can be written the chunks land there. With no directory set, the
 * log line and metric say the chunk was dropped.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, validateConfig } from '@tributary/core';
import { FrameDecoder, decodeEntries, parseRequest } from '@tributary/forward-protocol';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { type Started, exited, freePort, produce, startRecordingServer, startRole, tempDir, waitFor } from '@tributary/test-kit';

async function scrape(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? 0);
}

test('an unwritable dead-letter directory keeps the chunks, retries, shows in /readyz; the process stays up and they land once it is writable', async () => {
  const refusing = await startRecordingServer({
    consume: async () => {
      throw new Error('refused for the test');
    },
  });
  const dir = tempDir('deadfail');
  // The dead-letter directory's parent is a regular file: mkdir fails (ENOTDIR), also for root.
  writeFileSync(join(dir, 'blocker'), 'not a directory');
  const deadDir = join(dir, 'blocker', 'dead');
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = {
    forward: { port: forwardPort, udp_heartbeat: false },
    http: { enabled: false },
    buffer: { path: join(dir, 'buffer'), flush_interval_ms: 50 },
    output: {
      servers: [{ host: '127.0.0.1', port: refusing.port }],
      ack_timeout_ms: 1000,
      retry: { initial_ms: 20, max_ms: 100, max_attempts: 2, dead_letter_path: deadDir },
    },
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
  let fwd: Started | null = null;
  try {
    fwd = await startRole('forwarder', config, dir, metricsPort);
    const producer = produce(forwardPort, { perChunk: 10, maxEvents: 30 });
    await producer.done;
    expect(producer.stats.acked.size).toBe(30);

    await waitFor(() => (fwd?.output().match(/TRB_OUT_DEAD_LETTER_FAILED/g)?.length ?? 0) >= 3, 20_000, 'three failed dead-letter writes');
    const ops = await scrape(metricsPort, '/metrics');
    expect(metric(ops.text, 'tributary_forwarder_dead_letter_failures_total')).toBeGreaterThanOrEqual(3);
    const ready = await scrape(metricsPort, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/dead-letter directory .* cannot be written/);
    expect(fwd.child.exitCode).toBeNull();
    expect(fwd.output()).not.toMatch(/went to the dead-letter directory/);

    // The operator fixes the directory: the chunks land there, nothing is lost, readiness returns.
    rmSync(join(dir, 'blocker'));
    const landed = () =>
      // mkdir -p makes blocker/ before blocker/dead/: look only once the directory itself is there
      existsSync(deadDir) ? readdirSync(deadDir).filter((f) => f.endsWith('.msgpack')) : ([] as string[]);
    const events = () =>
      landed().flatMap((f) =>
        decodeEntries(parseRequest(new FrameDecoder().push(readFileSync(join(deadDir, f)))[0]).entries).map((e) => e.record.n as number),
      );
    await waitFor(() => events().length >= 30, 20_000, 'every event in the dead-letter directory');
    expect(events().sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await waitFor(() => fwd?.child.exitCode === null, 1000, 'the process alive');
    expect((await scrape(metricsPort, '/readyz')).status).toBe(200);
    expect(metric((await scrape(metricsPort, '/metrics')).text, 'tributary_forwarder_dead_letter_events_total')).toBe(30);
    fwd.child.kill('SIGTERM');
    expect(await exited(fwd.child)).toBe(0);
    expect(fwd.output()).not.toMatch(/unhandled|TRB_PROCESS/i);
  } finally {
    if (fwd && fwd.child.exitCode === null && fwd.child.signalCode === null) fwd.child.kill('SIGKILL');
    await refusing.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

test('with no dead-letter directory, a chunk given up on is logged and counted as dropped', async () => {
  const refusing = await startRecordingServer({
    consume: async () => {
      throw new Error('refused for the test');
    },
  });
  const dir = tempDir('dropped');
  const lines: string[] = [];
  const logger = createLogger('test', 'warn', { write: (line: string) => lines.push(line) });
  const fwd = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: join(dir, 'buf'), flush_interval_ms: 50 },
      output: {
        servers: [{ host: '127.0.0.1', port: refusing.port }],
        ack_timeout_ms: 1000,
        retry: { initial_ms: 20, max_ms: 50, max_attempts: 2 },
      },
      metrics: { port: 0 },
      shutdown_grace_ms: 200,
    }),
    logger,
  );
  try {
    await produce(fwd.ports.forward, { perChunk: 10, maxEvents: 10 }).done;
    await waitFor(() => lines.some((l) => l.includes('TRB_OUT_DROPPED')), 15_000, 'the dropped log line');
    const line = lines.find((l) => l.includes('TRB_OUT_DROPPED')) as string;
    expect(line).toMatch(/was dropped \(no dead_letter_path is set\)/);
    expect(lines.join('')).not.toMatch(/went to the dead-letter directory/);
    expect(await fwd.registry.metrics()).toMatch(/tributary_forwarder_dead_letter_events_total\{outcome="dropped"\} 10/);
  } finally {
    await fwd.stop();
    await refusing.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});
