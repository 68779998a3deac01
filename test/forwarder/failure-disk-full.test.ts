/**
 * Issue 11, item 6: a full disk. The forwarder's buffer sits on a 20 MiB
 * tmpfs while the aggregator stalls, so the buffer fills the filesystem and
 * writes fail with ENOSPC (the buffer's own max_bytes is far above it). The
 * forwarder must refuse cleanly (no ack on forward, 503 on HTTP), show it in
 * /readyz and a metric, never exit, and once the aggregator drains the buffer
 * and space returns, take events again. Every event that got an ack or a 2xx
 * must reach the aggregator.
 *
 * Needs root to mount the tmpfs; skipped with a message otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeEntries } from '@tributary/forward-protocol';
import { type Started, exited, freePort, produce, startRecordingServer, startRole, tempDir, waitFor } from '@tributary/test-kit';

const dir = tempDir('diskfull');
const mountPoint = join(dir, 'buffer');
let mounted = false;

beforeAll(() => {
  mkdirSync(mountPoint, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    console.warn(
      `disk-full test skipped: cannot mount a tmpfs at ${mountPoint} (${(err as Error).message.split('\n')[0]}); it needs root.`,
    );
  }
});

afterAll(() => {
  if (mounted) execFileSync('umount', [mountPoint], { stdio: 'pipe' });
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

test('ENOSPC refuses cleanly and loses nothing acked; events flow again once space returns; the process never exits', async () => {
  if (!mounted) return;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const received: number[] = [];
  const receiver = await startRecordingServer({
    consume: async (chunks) => {
      await gate;
      for (const c of chunks) for (const e of decodeEntries(c.entries)) received.push(e.record.n as number);
    },
  });
  const [forwardPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    forward: { port: forwardPort, udp_heartbeat: false },
    http: { port: httpPort },
    buffer: { path: mountPoint, flush_interval_ms: 100, chunk_limit_bytes: 256 * 1024 },
    output: { servers: [{ host: '127.0.0.1', port: receiver.port }], ack_timeout_ms: 120_000, retry: { initial_ms: 50, max_ms: 500 } },
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
  let fwd: Started | null = null;
  let httpRunning = true;
  const httpOk = new Set<number>();
  let httpRefused = 0;
  try {
    fwd = await startRole('forwarder', config, dir, metricsPort);
    const producer = produce(forwardPort, { perChunk: 50, maxEvents: 400_000 });
    const http = (async () => {
      for (let n = 10_000_000; httpRunning && n < 10_100_000; n++) {
        try {
          const res = await fetch(`http://127.0.0.1:${httpPort}/diskfull`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ n, pad: 'h'.repeat(200) }),
          });
          await res.arrayBuffer();
          if (res.status === 200) httpOk.add(n);
          else httpRefused++;
        } catch {
          httpRefused++;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    // The disk fills up: writes fail with ENOSPC and are refused.
    const deadline = Date.now() + 90_000;
    while (!/tributary_forwarder_buffer_io_errors_total\{op="write",code="ENOSPC"\}/.test((await scrape(metricsPort, '/metrics')).text)) {
      if (Date.now() > deadline) throw new Error('Timed out after 90000 ms waiting for ENOSPC refusals.');
      await new Promise((r) => setTimeout(r, 100));
    }
    const ackedAtFull = producer.stats.acked.size;
    const readyWhenFull = await scrape(metricsPort, '/readyz');
    await new Promise((r) => setTimeout(r, 1500));
    // Still full: the producer's chunk is refused and resent, unacked.
    expect(producer.stats.acked.size - ackedAtFull).toBeLessThan(2000);
    expect(fwd.child.exitCode).toBeNull();

    // The aggregator comes back; the buffer drains, space returns, events flow again.
    release();
    await waitFor(() => producer.stats.acked.size >= ackedAtFull + 20_000, 90_000, '20,000 more acked events after space returned');
    httpRunning = false;
    await http;
    await producer.stop();
    const acked = [...producer.stats.acked];
    const okAfterFull = httpOk.size;
    await waitFor(
      () => {
        const got = new Set(received);
        return acked.every((n) => got.has(n)) && [...httpOk].every((n) => got.has(n));
      },
      90_000,
      'every acked and every 2xx event at the receiver',
    );
    expect(fwd.child.exitCode).toBeNull();
    expect((await scrape(metricsPort, '/readyz')).status).toBe(200);
    console.log(
      `disk-full test: ${acked.length} forward events acked (${ackedAtFull} before the disk filled), ${okAfterFull} HTTP events got 200 and ${httpRefused} were refused; /readyz while full: ${readyWhenFull.status} ${readyWhenFull.text.trim()}; all acked and 2xx events delivered`,
    );
    fwd.child.kill('SIGTERM');
    expect(await exited(fwd.child)).toBe(0);
  } finally {
    httpRunning = false;
    release();
    if (fwd && fwd.child.exitCode === null && fwd.child.signalCode === null) fwd.child.kill('SIGKILL');
    if (fwd) await exited(fwd.child);
    await receiver.server.close(100);
  }
}, 300_000);
