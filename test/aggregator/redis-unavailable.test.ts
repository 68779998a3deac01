/**
 * Redis unavailable: `fail_open` keeps accepting (at-least-once), counted in a
 * metric; `fail_closed` stops acking. Redis never holds data, so nothing that
 * was acked is lost either way.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { readOutput, startRedis, tempDir, waitFor } from '@tributary/test-kit';

async function scenario(onUnavailable: 'fail_open' | 'fail_closed') {
  const redis = await startRedis();
  const dir = tempDir(`redis-${onUnavailable}`);
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      node_id: 'n1',
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      dedupe: { type: 'redis', redis: { url: redis.url, command_timeout_ms: 200 }, on_unavailable: onUnavailable },
      log: { path: join(dir, 'log') },
      egress: { max_wait_ms: 50 },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  const chunk = (id: string) => encodePackedForward('r.t', encodeEntry(new EventTime(1700000000, 0), { id }), { chunk: id });
  try {
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: agg.ports.forward, ackTimeoutMs: 3000 });
    await conn.send(chunk('before'), 'before'); // Redis up
    await redis.stop();
    const during = await ForwardConnection.connect({ host: '127.0.0.1', port: agg.ports.forward, ackTimeoutMs: 3000 });
    const outcome = await during.send(chunk('during'), 'during').then(
      () => 'acked',
      (err: Error) => err.message,
    );
    await conn.end();
    during.destroy();
    const metrics = await (await fetch(`http://127.0.0.1:${agg.ports.metrics}/metrics`)).text();
    await waitFor(() => readOutput(join(dir, 'out')).lines.length >= 1, 10_000, 'the first event');
    await new Promise((r) => setTimeout(r, 300));
    return {
      outcome,
      unavailable: Number(/tributary_aggregator_dedupe_unavailable_total (\d+)/.exec(metrics)?.[1]),
      written: readOutput(join(dir, 'out')).lines.map((l) => l.id),
    };
  } finally {
    await agg.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('fail_open: Redis down, chunks are still acked and written, counted', async () => {
  const r = await scenario('fail_open');
  expect(r.outcome).toBe('acked');
  expect(r.unavailable).toBeGreaterThan(0);
  expect(r.written.sort()).toEqual(['before', 'during']);
});

test('fail_closed: Redis down, no ack and nothing written', async () => {
  const r = await scenario('fail_closed');
  expect(r.outcome).not.toBe('acked');
  expect(r.outcome).toMatch(/closed|No ack/);
  expect(r.unavailable).toBeGreaterThan(0);
  expect(r.written).toEqual(['before']);
});
