/**
 * Two aggregators, one Redis, one forwarder. The forwarder is made to resend
 * the same chunks to both nodes — first by ack timeouts (a proxy swallows A's
 * acks although A wrote the data), then by killing A with SIGKILL mid-stream
 * and restarting it. Every event must appear exactly once in the union of
 * both nodes' file output, counted by `_id`.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import {
  type Started,
  countIds,
  exited,
  freePort,
  produce,
  readOutput,
  startAckDroppingProxy,
  startRedis,
  startRole,
  tempDir,
  waitFor,
} from '@tributary/test-kit';

const TOTAL = 40_000;

test('resends to both nodes: every event written exactly once (by _id)', async () => {
  const redis = await startRedis();
  const dir = tempDir('exactly-once');
  const started: Started[] = [];
  const nodes = await Promise.all(
    ['a', 'b'].map(async (name) => ({ name, forward: await freePort(), metrics: await freePort(), out: join(dir, name, 'out') })),
  );
  const aggConfig = (n: (typeof nodes)[number]) => ({
    node_id: `agg-${n.name}`,
    forward: { bind: '127.0.0.1', port: n.forward, udp_heartbeat: false },
    dedupe: { type: 'redis', redis: { url: redis.url }, claim_ttl_ms: 30_000, claim_wait_ms: 3000 },
    log: { type: 'embedded', path: join(dir, n.name, 'log') },
    egress: { batch_records: 16, max_wait_ms: 100 },
    sinks: [{ name: 'file', type: 'file', path: n.out }],
    metrics: { port: n.metrics },
    log_level: 'warn',
  });
  let forwarder: Forwarder | null = null;
  const proxy = await startAckDroppingProxy(nodes[0].forward);
  try {
    for (const n of nodes) started.push(await startRole('aggregator', aggConfig(n), join(dir, n.name), n.metrics));
    forwarder = await Forwarder.start(
      validateConfig(forwarderConfigSpec, {
        forward: { port: 0, udp_heartbeat: false },
        http: { enabled: false },
        buffer: { path: join(dir, 'fwd-buffer'), flush_interval_ms: 50, chunk_limit_bytes: 16 * 1024 },
        output: {
          servers: [
            { host: '127.0.0.1', port: proxy.port },
            { host: '127.0.0.1', port: nodes[1].forward },
          ],
          ack_timeout_ms: 1000,
          retry: { initial_ms: 50, max_ms: 1000 },
        },
        metrics: { port: 0 },
      }),
      silentLogger,
    );
    const producer = produce(forwarder.ports.forward, { perChunk: 100, maxEvents: TOTAL, pauseMs: 2 });

    // Phase 1: A writes but its acks vanish → ack timeouts → the same chunks go to B.
    await waitFor(() => producer.stats.acked.size > 5000, 30_000, 'traffic before dropping acks');
    proxy.setDropping(true);
    await new Promise((r) => setTimeout(r, 2500));
    proxy.setDropping(false);

    // Phase 2: kill -9 A mid-stream, then restart it on the same log.
    await waitFor(() => producer.stats.acked.size > 15_000, 30_000, 'traffic before the kill');
    started[0].child.kill('SIGKILL');
    await exited(started[0].child);
    await new Promise((r) => setTimeout(r, 1000));
    started[0] = await startRole('aggregator', aggConfig(nodes[0]), join(dir, 'a'), nodes[0].metrics);

    await producer.done;
    expect(producer.stats.acked.size).toBe(TOTAL);
    await waitFor(() => readOutput(nodes[0].out, nodes[1].out).lines.length >= TOTAL, 60_000, `${TOTAL} events in the output`);
    await new Promise((r) => setTimeout(r, 1500)); // let any late duplicate land before counting
    const { lines } = readOutput(nodes[0].out, nodes[1].out);
    const { ids, duplicates } = countIds(lines);
    const perNode = nodes.map((n) => readOutput(n.out).lines.length);
    const metrics = await (await fetch(`http://127.0.0.1:${nodes[1].metrics}/metrics`)).text();
    const dupHits = /tributary_aggregator_input_chunks_total\{outcome="duplicate"\} (\d+)/.exec(metrics)?.[1] ?? '0';
    console.log(
      `exactly-once: ${lines.length} lines, ${ids} distinct _id, ${duplicates.length} duplicated; per node ${perNode.join(' / ')}; B acked ${dupHits} resent chunks without writing`,
    );
    expect(duplicates).toEqual([]);
    expect(ids).toBe(TOTAL);
    expect(new Set(lines.map((l) => l.n)).size).toBe(TOTAL);
    expect(Number(dupHits)).toBeGreaterThan(0);
  } finally {
    await forwarder?.stop();
    await proxy.close();
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
