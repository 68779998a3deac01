/**
 * Aggregator ingest benchmark on loopback: this process sends PackedForward
 * chunks (1,000 ~200-byte events, ack per chunk); one aggregator process
 * claims every chunk in Redis (a private redis-server), appends to the
 * embedded log (group commit, fdatasync) and acks. Egress runs but routes
 * nothing (`match: none.**`), so the figure is ingest: acked events/s.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { sendPacked } from './forwarder';
import { freePort, peakRssMb, startCpuMeter, startRedis, waitHealthy } from './local-servers';
import { type BenchResult, percentile } from './stats';

export async function runAggregatorBench(seconds: number, connections: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'trb-bench-agg-'));
  const redis = await startRedis();
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'aggregator.yaml');
  writeFileSync(
    config,
    stringify({
      node_id: 'bench',
      forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
      dedupe: { type: 'redis', redis: { url: redis.url } },
      log: { path: join(dir, 'log') },
      egress: { routes: [{ match: 'none.**', sinks: ['file'] }] },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: metricsPort },
      log_level: 'warn',
    }),
  );
  const agg = spawn(
    process.execPath,
    [
      ...(process.env.TRB_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.TRB_BENCH_PROF] : []),
      join(__dirname, '..', '..', 'bin', 'tributary.js'),
      'aggregator',
      '--config',
      config,
    ],
    {
      stdio: 'inherit',
    },
  );
  try {
    await waitHealthy(metricsPort, 'The aggregator', () => agg.exitCode === null);
    const start = Date.now();
    const cpuUsed = startCpuMeter({ aggregator: agg.pid as number, redis: redis.pid });
    const sent = await sendPacked(forwardPort, seconds, connections);
    const elapsed = (Date.now() - start) / 1000;
    const cpu = cpuUsed();
    return {
      name: `aggregator ingest 1000x200B, acks, Redis dedupe, embedded log, ${connections} conns`,
      events: sent.sentEvents,
      bytes: sent.sentBytes,
      seconds: elapsed,
      p99Ms: percentile(
        sent.latencies.sort((a, b) => a - b),
        99,
      ),
      peakRssMb: peakRssMb(agg.pid as number),
      cpu,
    };
  } finally {
    agg.kill(process.env.TRB_BENCH_PROF ? 'SIGINT' : 'SIGKILL');
    await new Promise((r) => agg.once('exit', r));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
