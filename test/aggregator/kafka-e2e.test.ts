/**
 * The aggregator on the Kafka log, as a process: 10,000 events from the
 * fluent-logger npm package (PackedForward, acks) land in the file sink
 * exactly once (by `_id`), and the sink counter stays at 10,000 for 10 s
 * afterwards (the Kafka reader used to re-deliver committed records forever).
 *
 * The process test needs a broker: the suite's own from ../shared/kafka
 * (test/kafka-broker.js), or KAFKA_BROKERS (e.g. `docker compose up kafka`). The same
 * check runs always in-process with kafkajs's own consumer code over a fake
 * cluster (packages/log/src/kafka/__fixtures__/fake-cluster.ts),
 * so the Kafka reader meets the real egress on every run.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { silentLogger, validateConfig } from '@tributary/core';
import { type Started, countIds, exited, freePort, readOutput, startRole, tempDir, waitFor } from '@tributary/test-kit';
import { FakeKafkaCluster, fakeKafkajsClient } from '../../packages/log/src/kafka/__fixtures__/fake-cluster';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

const TOTAL = 10_000;

// Skipped without a broker (a clone without ../shared/kafka and no KAFKA_BROKERS): a fake would not show what this
// test is for, kafkajs against a real broker.
const maybe = process.env.KAFKA_BROKERS ? describe : describe.skip;

async function sinkEvents(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('tributary_aggregator_sink_events_total{'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

function expectEachEventOnce(out: string): void {
  const { lines } = readOutput(out);
  expect(lines).toHaveLength(TOTAL);
  expect(countIds(lines)).toEqual({ ids: TOTAL, duplicates: [] });
  const ns = lines.map((l) => l.n as number).sort((a, b) => a - b);
  expect(ns).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
  expect(new Set(lines.map((l) => l._tag))).toEqual(new Set(['app.web']));
}

async function sendWithFluentLogger(port: number): Promise<void> {
  const sender = fluent.createFluentSender('app', {
    host: '127.0.0.1',
    port,
    timeout: 5,
    eventMode: 'PackedForward',
    flushInterval: 20,
    requireAckResponse: true,
    ackResponseTimeout: 20_000,
    internalLogger: { info() {}, error() {} },
  });
  const errors: Error[] = [];
  sender.on('error', (err: Error) => errors.push(err));
  await Promise.all(
    Array.from(
      { length: TOTAL },
      (_, n) =>
        new Promise<void>((resolve, reject) =>
          sender.emit('web', { n, msg: `event ${n}` }, (err?: Error) => (err ? reject(err) : resolve())),
        ),
    ),
  );
  await new Promise<void>((r) => sender.end(null, null, () => r()));
  expect(errors).toEqual([]);
}

maybe('aggregator on the Kafka log', () => {
  let started: Started | null = null;
  const dir = tempDir('kafka-e2e');
  afterAll(async () => {
    if (started && started.child.exitCode === null) {
      started.child.kill('SIGKILL');
      await exited(started.child);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('10,000 fluent-logger events are written exactly once and the sink counter stays at 10,000', async () => {
    const forward = await freePort();
    const metrics = await freePort();
    const out = join(dir, 'out');
    const suffix = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    started = await startRole(
      'aggregator',
      {
        forward: { bind: '127.0.0.1', port: forward, udp_heartbeat: false },
        log: {
          type: 'kafka',
          kafka: {
            brokers: (process.env.KAFKA_BROKERS as string).split(','),
            topic: `trb-e2e-${suffix}`,
            partitions: 3,
            replication_factor: 1,
            min_insync_replicas: 1,
          },
        },
        egress: { group: `trb-e2e-${suffix}`, max_wait_ms: 100 },
        sinks: [{ name: 'file', type: 'file', path: out }],
        metrics: { port: metrics },
        log_level: 'warn',
      },
      dir,
      metrics,
    );
    await sendWithFluentLogger(forward);
    await waitFor(() => readOutput(out).lines.length >= TOTAL, 60_000, `${TOTAL} events in the file sink`);
    expect(await sinkEvents(metrics)).toBe(TOTAL);

    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      seen.push(await sinkEvents(metrics));
    }
    expect(seen).toEqual(Array(10).fill(TOTAL));

    expectEachEventOnce(out);

    started.child.kill('SIGTERM');
    expect(await exited(started.child)).toBe(0);
  });
});

test('in-process, kafkajs consumer code over a fake cluster: 10,000 fluent-logger events written once, the sink counter stays put', async () => {
  const dir = tempDir('kafka-fake');
  const out = join(dir, 'out');
  const cluster = new FakeKafkaCluster('tributary-chunks', 3);
  const agg = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      log: { type: 'kafka', kafka: { brokers: ['127.0.0.1:1'], partitions: 3, replication_factor: 1, min_insync_replicas: 1 } },
      egress: { max_wait_ms: 100 },
      sinks: [{ name: 'file', type: 'file', path: out }],
      metrics: { port: 0 },
    }),
    silentLogger,
    { kafka: fakeKafkajsClient(cluster) as never },
  );
  try {
    await sendWithFluentLogger(agg.ports.forward);
    expect(cluster.partitions.reduce((n, p) => n + p.length, 0)).toBeGreaterThan(0);
    await waitFor(() => readOutput(out).lines.length >= TOTAL, 60_000, `${TOTAL} events in the file sink`);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      seen.push(await sinkEvents(agg.ports.metrics));
    }
    expect(seen).toEqual(Array(5).fill(TOTAL));
    expectEachEventOnce(out);
    // Every partition's group commit reached its end.
    const committed = cluster.committed('tributary-egress');
    expect(cluster.partitions.map((p, i) => committed.get(i) ?? 0)).toEqual(cluster.partitions.map((p) => p.length));
  } finally {
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
