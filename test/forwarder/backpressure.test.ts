/**
 * Backpressure: the receiver stalls for 30 s under load. With `block`, the
 * forwarder's buffer fills to its limit, it stops reading sockets and the
 * senders' acks stop (they slow down); RSS stays bounded. With `drop_oldest`,
 * the senders keep going and the drops are counted. When the receiver
 * returns, everything buffered flows.
 */
import { rmSync } from 'node:fs';
import { type Started, exited, freePort, peakRssMb, produce, startRecordingServer, startRole, tempDir } from '@tributary/test-kit';

const MB = 1024 * 1024;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

async function scenario(overflow: 'block' | 'drop_oldest', stallMs: number) {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const receiver = await startRecordingServer();
  const stalled = await startRecordingServer({
    consume: async (chunks) => {
      await gate;
      for (const c of chunks)
        receiver.events.push(...(await import('@tributary/forward-protocol')).decodeEntries(c.entries).map((e) => ({ ...e, tag: c.tag })));
    },
  });
  const dir = tempDir(`bp-${overflow}`);
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const started: Started[] = [];
  try {
    const fwd = await startRole(
      'forwarder',
      {
        forward: { port: forwardPort, udp_heartbeat: false },
        http: { enabled: false },
        buffer: { path: `${dir}/buffer`, max_bytes: 16 * MB, chunk_limit_bytes: 512 * 1024, flush_interval_ms: 100, overflow },
        output: { servers: [{ host: '127.0.0.1', port: stalled.port }], ack_timeout_ms: 120_000, window: 4 },
        metrics: { port: metricsPort },
        log_level: 'error',
      },
      dir,
      metricsPort,
    );
    started.push(fwd);
    const producers = Array.from({ length: 4 }, (_, i) =>
      produce(forwardPort, { perChunk: 500, maxEvents: 200_000, firstId: i * 1_000_000, ackTimeoutMs: 120_000 }),
    );
    const acked = () => producers.reduce((n, p) => n + p.stats.acked.size, 0);
    const stallEnds = Date.now() + stallMs;
    let maxBufferBytes = 0;
    const samples: number[] = [];
    while (Date.now() < stallEnds) {
      await new Promise((r) => setTimeout(r, 1000));
      maxBufferBytes = Math.max(maxBufferBytes, await metric(metricsPort, 'tributary_forwarder_buffer_bytes'));
      samples.push(acked());
    }
    const peakDuringStall = peakRssMb(fwd.child.pid as number);
    release();
    await Promise.all(producers.map((p) => p.stop()));
    const total = acked();
    // Read after the senders stopped: with drop_oldest they go on (and drops with them) until then.
    let dropped = await metric(metricsPort, 'tributary_forwarder_buffer_dropped_events_total');
    const drainUntil = Date.now() + 60_000;
    while (receiver.events.length + dropped < total) {
      if (Date.now() > drainUntil)
        throw new Error(
          `Timed out after 60000 ms waiting for the backlog to drain (${receiver.events.length} delivered + ${dropped} dropped of ${total}).`,
        );
      await new Promise((r) => setTimeout(r, 100));
      dropped = await metric(metricsPort, 'tributary_forwarder_buffer_dropped_events_total');
    }
    fwd.child.kill('SIGTERM');
    expect(await exited(fwd.child)).toBe(0);
    return { samples, maxBufferBytes, peakDuringStall, dropped, total, delivered: new Set(receiver.events.map((e) => e.record.n)).size };
  } finally {
    release();
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await receiver.server.close(100);
    await stalled.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('block: senders slow to a stop while the receiver stalls 30 s; RSS bounded; all flows after', async () => {
  const r = await scenario('block', 30_000);
  console.log(
    `backpressure block: acked during stall ${r.samples.join(',')}; buffer peak ${(r.maxBufferBytes / MB).toFixed(1)} MB; forwarder peak RSS ${r.peakDuringStall.toFixed(0)} MB; delivered ${r.delivered}/${r.total}`,
  );
  expect(r.maxBufferBytes).toBeLessThanOrEqual(16 * MB);
  // the last 10 s of the stall: no acks at all — the senders are held back
  expect(r.samples[r.samples.length - 1]).toBe(r.samples[r.samples.length - 11]);
  expect(r.samples[r.samples.length - 1]).toBeGreaterThan(0);
  expect(r.peakDuringStall).toBeLessThan(150);
  expect(r.dropped).toBe(0);
  expect(r.delivered).toBe(r.total);
}, 150_000);

test('drop_oldest: senders keep going, drops are counted, the rest flows after', async () => {
  const r = await scenario('drop_oldest', 8_000);
  console.log(
    `backpressure drop_oldest: acked ${r.total}, dropped ${r.dropped}, delivered ${r.delivered}; peak RSS ${r.peakDuringStall.toFixed(0)} MB`,
  );
  expect(r.dropped).toBeGreaterThan(0);
  expect(r.delivered + r.dropped).toBeGreaterThanOrEqual(r.total);
  expect(r.maxBufferBytes).toBeLessThanOrEqual(16 * MB);
}, 120_000);
