/**
 * Aggregator ingest benchmark on loopback: this process sends PackedForward
 * chunks (1,000 ~200-byte events, ack per chunk); one aggregator process
 * claims every chunk in Redis (a private redis-server), appends to the
 * embedded log (group commit, fdatasync) and acks. Egress runs but routes
 * nothing (`match: none.**`), so the figure is ingest: acked events/s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, peakRssMb, sendPacked } from './forwarder';
import { type BenchResult, percentile } from './stats';

async function waitHealthy(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not start within 15 s.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startRedis(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.on('error', (err) =>
      reject(new Error(`redis-server could not start (${err.message}); install it (apt-get install redis-server).`)),
    );
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  return { child, port };
}

export async function runAggregatorBench(seconds: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'trb-bench-agg-'));
  const redis = await startRedis();
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'aggregator.yaml');
  writeFileSync(
    config,
    stringify({
      node_id: 'bench',
      forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
      dedupe: { type: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}` } },
      log: { path: join(dir, 'log') },
      egress: { routes: [{ match: 'none.**', sinks: ['file'] }] },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: metricsPort },
      log_level: 'warn',
    }),
  );
  const agg = spawn(process.execPath, [join(__dirname, '..', '..', 'bin', 'tributary.js'), 'aggregator', '--config', config], {
    stdio: 'inherit',
  });
  try {
    await waitHealthy(metricsPort, 'The aggregator');
    const start = Date.now();
    const sent = await sendPacked(forwardPort, seconds, 4);
    const elapsed = (Date.now() - start) / 1000;
    return {
      name: 'aggregator ingest 1000x200B, acks, Redis dedupe, embedded log',
      events: sent.sentEvents,
      bytes: sent.sentBytes,
      seconds: elapsed,
      p99Ms: percentile(
        sent.latencies.sort((a, b) => a - b),
        99,
      ),
      peakRssMb: peakRssMb(agg.pid as number),
    };
  } finally {
    agg.kill('SIGKILL');
    redis.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
