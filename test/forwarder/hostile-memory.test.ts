/**
 * Memory bounded per sender and in total (issue 10 item 4), at a forwarder
 * process with its default limits: senders that stall mid-frame or before
 * authenticating cannot grow its memory past the systemd cap (256 MB), and a
 * good client keeps getting its acks meanwhile.
 */
import { rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { type Started, exited, freePort, peakRssMb, startRole, tempDir } from '@tributary/test-kit';

const MB = 1024 * 1024;
/** The forwarder's systemd MemoryMax (deploy/systemd). */
const RSS_BOUND_MB = 256;

async function startForwarder(dir: string, extra: Record<string, unknown> = {}): Promise<{ fwd: Started; port: number }> {
  const [port, metricsPort, deadPort] = [await freePort(), await freePort(), await freePort()];
  const fwd = await startRole(
    'forwarder',
    {
      forward: { port, udp_heartbeat: false, ...extra },
      http: { enabled: false },
      buffer: { type: 'memory', max_bytes: 64 * MB },
      // Nowhere to deliver: acks mean "buffered", which is what this test is about.
      output: { servers: [{ host: '127.0.0.1', port: deadPort }] },
      metrics: { port: metricsPort },
      shutdown_grace_ms: 1000,
      log_level: 'error',
    },
    dir,
    metricsPort,
  );
  return { fwd, port };
}

/** Opens `n` connections and writes `bytes` on each, never finishing; returns them (to destroy). */
async function stall(port: number, n: number, bytes: Buffer): Promise<Socket[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', () => {});
        }),
    ),
  );
  for (const s of sockets) s.write(bytes);
  return sockets;
}

/** A good client sends `chunks` acked chunks; resolves with how many were acked (bounded by the ack timeout). */
async function goodClient(port: number, chunks: number, security?: { hostname: string; sharedKey: string }): Promise<number> {
  const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 10_000, security });
  let acked = 0;
  for (let c = 0; c < chunks; c++) {
    const entries = Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeEntry(new EventTime(1700000000, 0), { c, i })));
    await conn.send(encodePackedForward('good', entries, { chunk: `g${c}` }), `g${c}`);
    acked++;
  }
  await conn.end();
  return acked;
}

async function stop(fwd: Started): Promise<number | null> {
  fwd.child.kill('SIGTERM');
  const code = await Promise.race([exited(fwd.child), new Promise<string>((r) => setTimeout(() => r('hung'), 15_000))]);
  if (code === 'hung') fwd.child.kill('SIGKILL');
  return code as number | null;
}

test('150 connections stalled 15 MiB into a 16 MB frame: RSS stays under 256 MB, a good client is acked', async () => {
  const dir = tempDir('mem-frames');
  const { fwd, port } = await startForwarder(dir);
  let sockets: Socket[] = [];
  try {
    // [tag, bin32 of 16,000,000 bytes …]: 15 MiB of it, then silence.
    const head = Buffer.from([0x93, 0xa1, 0x74, 0xc6, 0x00, 0xf4, 0x24, 0x00]);
    sockets = await stall(port, 150, Buffer.concat([head, Buffer.alloc(15 * MB, 0x61)]));
    await new Promise((r) => setTimeout(r, 4000));
    expect(await goodClient(port, 100)).toBe(100);
    const peak = peakRssMb(fwd.child.pid as number);
    expect(peak).toBeLessThan(RSS_BOUND_MB);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(await goodClient(port, 20)).toBe(20);
    expect(fwd.child.exitCode).toBeNull();
  } finally {
    for (const s of sockets) s.destroy();
    expect(await stop(fwd)).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('30 unauthenticated connections stalled in an 8 MiB-hostname PING: refused at 64 KiB, a good client authenticates and is acked', async () => {
  const dir = tempDir('mem-ping');
  const { fwd, port } = await startForwarder(dir, { security: { self_hostname: 'fwd', shared_key: 'k' } });
  let sockets: Socket[] = [];
  try {
    // ["PING", str32 of 8 MiB …]: 7 MiB of the hostname, then silence.
    const head = Buffer.from([0x96, 0xa4, 0x50, 0x49, 0x4e, 0x47, 0xdb, 0x00, 0x80, 0x00, 0x00]);
    sockets = await stall(port, 30, Buffer.concat([head, Buffer.alloc(7 * MB, 0x68)]));
    await new Promise((r) => setTimeout(r, 2000));
    expect(await goodClient(port, 50, { hostname: 'app', sharedKey: 'k' })).toBe(50);
    expect(peakRssMb(fwd.child.pid as number)).toBeLessThan(RSS_BOUND_MB);
    // Logged lines stay short: no client hostname written whole.
    expect(
      fwd
        .output()
        .split('\n')
        .every((l) => l.length < 2000),
    ).toBe(true);
  } finally {
    for (const s of sockets) s.destroy();
    expect(await stop(fwd)).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
