/**
 * aws_firehose sink against the Firehose-API test endpoint: throttled calls
 * and partial failures. Every event is delivered; only failed records are
 * resent; events too large for Firehose go to the dead-letter directory.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { EventTime, ForwardConnection, encodeEntry, encodePackedForward } from '@tributary/forward-protocol';
import { startFirehoseEndpoint, tempDir, waitFor } from '@tributary/test-kit';

test('throttling and partial failures: every event delivered, only failed records resent', async () => {
  const dir = tempDir('firehose');
  const endpoint = await startFirehoseEndpoint(join(dir, 'delivered'));
  endpoint.throttleNext(3);
  endpoint.failEveryNth(7);
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      dedupe: { type: 'embedded' },
      log: { path: join(dir, 'log') },
      egress: { batch_records: 8, max_wait_ms: 50, retry_initial_ms: 10, retry_max_ms: 100, routes: [{ match: 'app.**', sinks: ['fh'] }] },
      sinks: [
        {
          name: 'fh',
          type: 'aws_firehose',
          delivery_stream: 'logs',
          endpoint: endpoint.url,
          region: 'us-east-1',
          access_key_id: 'test',
          secret_access_key: 'test',
          max_attempts: 20,
          dead_letter_path: join(dir, 'dead'),
        },
      ],
      metrics: { port: 0 },
    }),
    silentLogger,
  );
  try {
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: agg.ports.forward });
    const N = 2000;
    for (let c = 0; c < N / 100; c++) {
      const entries = Buffer.concat(
        Array.from({ length: 100 }, (_, i) => encodeEntry(new EventTime(1700000000 + c, i), { n: c * 100 + i })),
      );
      await conn.send(encodePackedForward('app.fh', entries, { chunk: `c${c}`, size: 100 }), `c${c}`);
    }
    // one event over Firehose's 1,000 KiB record limit
    const huge = encodeEntry(new EventTime(1700000000, 0), { n: -1, blob: 'x'.repeat(1100 * 1024) });
    await conn.send(encodePackedForward('app.fh', huge, { chunk: 'huge', size: 1 }), 'huge');
    await conn.end();

    await waitFor(() => new Set(endpoint.lines().map((l) => JSON.parse(l).n)).size >= N, 30_000, 'all events at Firehose');
    const lines = endpoint.lines().map((l) => JSON.parse(l));
    const ids = new Set(lines.map((l) => l._id));
    expect(ids.size).toBe(N);
    expect(lines).toHaveLength(N); // only failed records were resent: nothing accepted twice
    // PutRecordBatch calls run concurrently, so arrival order is not event order: look the first event up
    expect(lines.find((l) => l.n === 0)).toMatchObject({ _tag: 'app.fh', _time: '2023-11-14T22:13:20.000000000Z' });
    expect(endpoint.stats.throttledCalls).toBe(3);
    expect(endpoint.stats.recordsFailed).toBeGreaterThan(0);
    expect(endpoint.stats.recordsAccepted).toBe(N);
    const dead = readFileSync(join(dir, 'dead', 'fh.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toMatch(/exceeds the Firehose record limit/);
    const metrics = await (await fetch(`http://127.0.0.1:${agg.ports.metrics}/metrics`)).text();
    expect(metrics).toMatch(/tributary_aggregator_sink_failed_records_total\{sink="fh"\} [1-9]/);
    expect(metrics).toMatch(/tributary_aggregator_dead_letter_events_total\{sink="fh"\} 1/);
    console.log(
      `firehose: ${N} events delivered once; ${endpoint.stats.calls} calls, ${endpoint.stats.throttledCalls} throttled, ${endpoint.stats.recordsFailed} records failed and were resent alone; 1 oversized event dead-lettered`,
    );
  } finally {
    await agg.stop();
    await endpoint.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
