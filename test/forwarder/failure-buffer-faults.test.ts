/**
 * Issue 11, items 4 and 5, forwarder disk buffer: faults injected through the
 * filesystem seam into a running forwarder. For each: the process stays up
 * (no unhandled rejection), the failure shows in /readyz and a metric, nothing
 * acked is lost, and appends resume when the fault clears — except after a
 * failed fdatasync, which stops acks until a restart, as the embedded log does.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FaultyFilesystem, silentLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { produce, startRecordingServer, tempDir, waitFor } from '@tributary/test-kit';

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

async function start(dir: string, fs: FaultyFilesystem, receiverPort: number) {
  return Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { port: 0 },
      buffer: { path: join(dir, 'buf'), flush_interval_ms: 50, fsync_interval_ms: 50 },
      output: { servers: [{ host: '127.0.0.1', port: receiverPort }], ack_timeout_ms: 2000, retry: { initial_ms: 20, max_ms: 200 } },
      metrics: { port: 0 },
      shutdown_grace_ms: 1000,
    }),
    silentLogger,
    { fs },
  );
}

async function ops(fwd: Forwarder, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${fwd.ports.metrics}${path}`);
  return { status: res.status, text: await res.text() };
}

async function post(fwd: Forwarder, n: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${fwd.ports.http}/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ n }),
  });
  await res.arrayBuffer();
  return res.status;
}

const delivered = (events: Array<{ record: Record<string, unknown> }>) => new Set(events.map((e) => e.record.n as number));

test('a failed fdatasync stops acks until restart, shows in /readyz and a metric; what was acked is delivered', async () => {
  const receiver = await startRecordingServer();
  const dir = tempDir('fsyncfail');
  const fs = new FaultyFilesystem();
  const fwd = await start(dir, fs, receiver.port);
  try {
    const before = produce(fwd.ports.forward, { perChunk: 20, maxEvents: 200 });
    await before.done;
    expect(before.stats.acked.size).toBe(200);
    fs.inject({ ops: ['fdatasync'], code: 'EIO' });
    await waitFor(() => fwd.buffer.problem() !== null, 5000, 'the failed fdatasync');
    const ready = await ops(fwd, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/fdatasync failed/);
    const metrics = (await ops(fwd, '/metrics')).text;
    expect(metrics).toMatch(/tributary_forwarder_buffer_io_errors_total\{op="fdatasync",code="EIO"\} 1/);
    expect(metrics).toMatch(/tributary_forwarder_buffer_refusing 1/);
    // No more acks, even with the fault gone (a retried fdatasync can falsely succeed).
    fs.clear();
    expect(await post(fwd, 100_001)).toBe(503);
    const after = produce(fwd.ports.forward, { perChunk: 20, maxEvents: 20, firstId: 2000, ackTimeoutMs: 500 });
    await new Promise((r) => setTimeout(r, 1000));
    await after.stop();
    expect(after.stats.acked.size).toBe(0);
    await waitFor(() => [...before.stats.acked].every((n) => delivered(receiver.events).has(n)), 10_000, 'the acked events delivered');
    expect(unhandled).toEqual([]);
  } finally {
    await fwd.stop();
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('EIO on buffer writes refuses (no ack, 503) and events flow again once the fault clears', async () => {
  const receiver = await startRecordingServer();
  const dir = tempDir('eio');
  const fs = new FaultyFilesystem();
  const fwd = await start(dir, fs, receiver.port);
  try {
    fs.inject({ ops: ['writev', 'open'], path: join(dir, 'buf'), code: 'EIO' });
    expect(await post(fwd, 100_001)).toBe(503);
    const producer = produce(fwd.ports.forward, { perChunk: 20, maxEvents: 400, ackTimeoutMs: 1000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(producer.stats.acked.size).toBe(0);
    const ready = await ops(fwd, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/EIO/);
    expect((await ops(fwd, '/metrics')).text).toMatch(/tributary_forwarder_buffer_io_errors_total\{op="write",code="EIO"\} [1-9]/);
    fs.clear();
    await producer.done;
    expect(producer.stats.acked.size).toBe(400);
    expect(await post(fwd, 100_002)).toBe(200);
    expect((await ops(fwd, '/readyz')).status).toBe(200);
    await waitFor(
      () => [...producer.stats.acked, 100_002].every((n) => delivered(receiver.events).has(n)),
      10_000,
      'every acked event delivered',
    );
    expect(delivered(receiver.events).has(100_001)).toBe(false);
    expect(unhandled).toEqual([]);
  } finally {
    await fwd.stop();
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chunk files that cannot be deleted after delivery do not break acks; they are counted and deleted on a retry', async () => {
  const receiver = await startRecordingServer();
  const dir = tempDir('unlink');
  const fs = new FaultyFilesystem();
  const fwd = await start(dir, fs, receiver.port);
  try {
    fs.inject({ ops: ['unlink'], path: '.chunk', code: 'EIO', times: 3 });
    const producer = produce(fwd.ports.forward, { perChunk: 20, maxEvents: 200 });
    await producer.done;
    await waitFor(() => [...producer.stats.acked].every((n) => delivered(receiver.events).has(n)), 10_000, 'every acked event delivered');
    await waitFor(() => (fs.failures.get('unlink') ?? 0) >= 3, 10_000, 'three failed deletes');
    expect((await ops(fwd, '/metrics')).text).toMatch(/tributary_forwarder_buffer_io_errors_total\{op="unlink",code="EIO"\} 3/);
    // The retries delete them: only empty spare files stay.
    await waitFor(
      () => fwd.buffer.stats().chunks === 0 && readdirSync(join(dir, 'buf')).filter((f) => f.endsWith('.chunk')).length <= 8,
      10_000,
      'the undeleted files removed on retry',
    );
    expect(unhandled).toEqual([]);
  } finally {
    await fwd.stop();
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
});
