/**
 * Dedupe on a real Redis Cluster (three local masters, as ElastiCache in
 * cluster mode): claims and done marks spread over the shards, and a resent
 * chunk is still written once.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { countIds, freePort, readOutput, tempDir, waitFor } from '@tributary/test-kit';

test('Redis Cluster: keys on every shard, resends written once', async () => {
  const dir = tempDir('redis-cluster');
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      {
        stdio: 'ignore',
      },
    ),
  );
  let agg: Aggregator | null = null;
  try {
    await waitFor(() => ports.every((p) => spawnOk('redis-cli', ['-p', String(p), 'ping'])), 10_000, 'the cluster nodes to start');
    execFileSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      stdio: 'ignore',
    });
    await waitFor(
      () => /cluster_state:ok/.test(execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' })),
      15_000,
      'cluster_state:ok',
    );
    agg = await Aggregator.start(
      validateConfig(aggregatorConfigSpec, {
        node_id: 'c1',
        forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
        dedupe: { type: 'redis', redis: { cluster_nodes: ports.map((p) => `127.0.0.1:${p}`) }, on_unavailable: 'fail_closed' },
        log: { path: join(dir, 'log') },
        egress: { max_wait_ms: 50 },
        sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
        metrics: { port: 0 },
      }),
      silentLogger,
    );
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: agg.ports.forward });
    const t = new EventTime(1700000000, 0);
    const frames = Array.from({ length: 60 }, (_, c) =>
      encodePackedForward('cl', Buffer.concat(Array.from({ length: 10 }, (_, i) => encodeEntry(t, { n: c * 10 + i }))), { chunk: `k${c}` }),
    );
    await Promise.all(frames.map((f, c) => conn.send(f, `k${c}`)));
    await Promise.all(frames.map((f, c) => conn.send(f, `k${c}`))); // every chunk resent
    await conn.end();
    await waitFor(() => readOutput(join(dir, 'out')).lines.length >= 600, 10_000, '600 events');
    await new Promise((r) => setTimeout(r, 300));
    expect(countIds(readOutput(join(dir, 'out')).lines)).toEqual({ ids: 600, duplicates: [] });
    const keysOf = (p: number) =>
      execFileSync('redis-cli', ['-p', String(p), '--scan', '--pattern', '*'], { encoding: 'utf8' })
        .split('\n')
        .filter((k) => k && !k.includes('!')); // chunk marks only, not the store's epoch and heartbeat keys
    const perShard = ports.map((p) => keysOf(p).length);
    expect(perShard.every((n) => n > 0)).toBe(true);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(60);
    const metrics = await agg.registry.metrics();
    expect(metrics).toMatch(/tributary_aggregator_input_chunks_total\{outcome="duplicate"\} 60/);
  } finally {
    await agg?.stop();
    for (const n of nodes) n.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('PONG');
  } catch {
    return false;
  }
}
