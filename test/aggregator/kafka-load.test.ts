/**
 * The aggregator on a real Kafka broker (Apache Kafka 2.1.1 from
 * ../shared/kafka), under load and through faults, as processes:
 *
 * - load: 10 s of acked PackedForward at full speed from 2 connections. Every
 *   acked event is in the file sink within 60 s after, once; /metrics answers
 *   within 1 s throughout; SIGTERM exits 0 within the drain grace. (On a
 *   real broker, egress used to spin on a window past its age, starving the
 *   process: /metrics stopped answering and SIGTERM did nothing.)
 * - broker down for 30 s mid-load, on a broker of the test's own: acks pause,
 *   /readyz says why, nothing acked is lost, and delivery resumes without a
 *   restart.
 * - two aggregators on one topic and group (Redis dedupe, one file sink
 *   directory standing for a shared bucket): kill -9 one mid-load and start
 *   it again; after the rebalance every acked event is in the sink once.
 *
 * Skipped (saying so) where there is no broker: a clone without ../shared/kafka
 * and no KAFKA_BROKERS (see the README for `docker compose up kafka`).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  KAFKA_HOME,
  type LocalKafka,
  type Started,
  exited,
  freePort,
  produce,
  readOutput,
  startKafka,
  startRedis,
  startRole,
  tempDir,
  waitFor,
} from '@tributary/test-kit';

const brokers = process.env.KAFKA_BROKERS;
if (!brokers) console.warn('kafka-load: no Kafka broker (KAFKA_BROKERS unset, no ../shared/kafka): skipped.');
const withBroker = brokers ? describe : describe.skip;
const withOwnBroker = KAFKA_HOME ? describe : describe.skip;

const GRACE_MS = 10_000;

function aggregatorConfig(forward: number, metrics: number, out: string, kafkaBrokers: string, run: string, extra: object = {}) {
  return {
    ...extra,
    forward: { bind: '127.0.0.1', port: forward, udp_heartbeat: false },
    log: {
      type: 'kafka',
      kafka: { brokers: kafkaBrokers.split(','), topic: run, partitions: 3, replication_factor: 1, min_insync_replicas: 1 },
    },
    egress: { group: run, max_wait_ms: 100, objects: { age_ms: 500 } },
    sinks: [{ name: 'file', type: 'file', path: out }],
    metrics: { port: metrics },
    shutdown_grace_ms: GRACE_MS,
    log_level: 'warn',
  };
}

/** Polls /metrics every 200 ms with a 1 s limit; `stop` returns the slowest answer (ms) and the failures. */
function watchMetrics(port: number) {
  let stopped = false;
  let slowest = 0;
  const failures: string[] = [];
  const done = (async () => {
    while (!stopped) {
      const t = Date.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) });
        await res.text();
      } catch (err) {
        failures.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
      slowest = Math.max(slowest, Date.now() - t);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return { slowest, failures };
    },
  };
}

/** Waits (bounded) for an async condition, looking every 250 ms. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Events the file sink confirmed, from /metrics. */
async function sinkEvents(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(1000) })).text();
  const m = /^tributary_aggregator_sink_events_total\{sink="file"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Each event number the sink holds, counted; and those acked but missing, and those written more than once. */
function tally(out: string, acked: Iterable<number>) {
  const seen = new Map<number, number>();
  for (const l of readOutput(out).lines) seen.set(l.n as number, (seen.get(l.n as number) ?? 0) + 1);
  const missing = [...acked].filter((n) => !seen.has(n));
  const twice = [...seen].filter(([, c]) => c > 1).map(([n]) => n);
  return { lines: [...seen.values()].reduce((a, b) => a + b, 0), missing: missing.length, twice: twice.length };
}

withBroker('aggregator on a real Kafka broker under load', () => {
  let agg: Started | null = null;
  let dir = '';
  beforeAll(() => {
    dir = tempDir('kafka-load');
  });
  afterAll(async () => {
    if (agg && agg.child.exitCode === null) {
      agg.child.kill('SIGKILL');
      await exited(agg.child);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('10 s of acked PackedForward from 2 connections: every acked event in the sink once, /metrics within 1 s, SIGTERM exits 0', async () => {
    const [forward, metrics] = [await freePort(), await freePort()];
    const out = join(dir, 'out');
    const run = `trb-load-${Date.now()}`;
    agg = await startRole('aggregator', aggregatorConfig(forward, metrics, out, brokers as string, run), dir, metrics);
    const watch = watchMetrics(metrics);
    const senders = [0, 1].map((i) => produce(forward, { perChunk: 1000, maxEvents: 50_000_000, firstId: i * 100_000_000 }));
    await new Promise((r) => setTimeout(r, 10_000));
    await Promise.all(senders.map((s) => s.stop()));
    const acked = senders.flatMap((s) => [...s.stats.acked]);
    expect(acked.length).toBeGreaterThan(50_000);
    await until(async () => (await sinkEvents(metrics)) >= acked.length, 60_000, `${acked.length} acked events in the sink`);
    // Stopped before tally, which reads the whole sink synchronously here, in the test's process (a watch request
    // in flight meanwhile timed out on this process's own blocked loop), and before SIGTERM closes /metrics.
    const { slowest, failures } = await watch.stop();
    const result = tally(out, acked);
    const sigterm = Date.now();
    agg.child.kill('SIGTERM');
    const code = await exited(agg.child);
    const exitMs = Date.now() - sigterm;
    console.log(
      `kafka load: ${acked.length} events acked in 10 s (${Math.round(acked.length / 10)}/s), ${result.lines} lines in the sink; slowest /metrics ${slowest} ms; SIGTERM to exit ${exitMs} ms`,
    );
    expect({ missing: result.missing, twice: result.twice, lines: result.lines }).toEqual({ missing: 0, twice: 0, lines: acked.length });
    expect(failures).toEqual([]);
    expect(slowest).toBeLessThan(1000);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(GRACE_MS + 5000);
  });
});

withOwnBroker('aggregator while its Kafka broker is down for 30 s', () => {
  let agg: Started | null = null;
  let kafka: LocalKafka | null = null;
  let dir = '';
  beforeAll(() => {
    dir = tempDir('kafka-down');
  });
  afterAll(async () => {
    if (agg && agg.child.exitCode === null) {
      agg.child.kill('SIGKILL');
      await exited(agg.child);
    }
    await kafka?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('acks pause, /readyz says why, nothing acked is lost, delivery resumes without a restart', async () => {
    kafka = await startKafka();
    const [forward, metrics] = [await freePort(), await freePort()];
    const out = join(dir, 'out');
    const run = `trb-down-${Date.now()}`;
    agg = await startRole('aggregator', aggregatorConfig(forward, metrics, out, kafka.brokers, run), dir, metrics);
    const pid = agg.child.pid;
    const watch = watchMetrics(metrics);
    const sender = produce(forward, { perChunk: 200, maxEvents: 50_000_000, pauseMs: 20, ackTimeoutMs: 5000 });
    await waitFor(() => sender.stats.acked.size >= 5000, 30_000, 'acks before the broker stops');

    await kafka.stop();
    const stoppedAt = Date.now();
    // What was in flight settles; from then on nothing is acked while the broker is down.
    await new Promise((r) => setTimeout(r, 8000));
    const ackedWhileDown = sender.stats.acked.size;
    let readyz = { status: 0, body: '' };
    await until(
      async () => {
        const res = await fetch(`http://127.0.0.1:${metrics}/readyz`, { signal: AbortSignal.timeout(1000) });
        readyz = { status: res.status, body: await res.text() };
        return res.status === 503;
      },
      20_000,
      '/readyz to turn 503 while the broker is down',
    );
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 30_000 - Date.now())));
    const ackedAtRestart = sender.stats.acked.size;
    await kafka.start();

    await waitFor(() => sender.stats.acked.size >= ackedAtRestart + 5000, 90_000, 'acks again after the broker is back');
    await sender.stop();
    const acked = [...sender.stats.acked];
    await until(async () => (await sinkEvents(metrics)) >= acked.length, 90_000, `${acked.length} acked events in the sink`);
    const result = tally(out, acked);
    const { slowest, failures } = await watch.stop();
    console.log(
      `kafka down 30 s: ${ackedWhileDown} acked before, ${ackedAtRestart - ackedWhileDown} acked while down, ${acked.length} in all; /readyz while down: ${readyz.status} ${readyz.body.slice(0, 200)}; slowest /metrics ${slowest} ms`,
    );
    expect(ackedAtRestart - ackedWhileDown).toBe(0);
    expect(readyz.status).toBe(503);
    expect(readyz.body).toMatch(/kafka|produce|broker|connect/i);
    expect({ missing: result.missing, twice: result.twice }).toEqual({ missing: 0, twice: 0 });
    expect(agg.child.pid).toBe(pid); // the same process: no restart
    expect(agg.child.exitCode).toBeNull();
    expect(failures).toEqual([]);
    agg.child.kill('SIGTERM');
    expect(await exited(agg.child)).toBe(0);
  }, 300_000);
});

withBroker('two aggregators on one Kafka topic, one killed mid-load', () => {
  const nodes: Array<Started | null> = [null, null];
  let redis: Awaited<ReturnType<typeof startRedis>> | null = null;
  let dir = '';
  beforeAll(() => {
    dir = tempDir('kafka-kill');
  });
  afterAll(async () => {
    for (const n of nodes) {
      if (n && n.child.exitCode === null) {
        n.child.kill('SIGKILL');
        await exited(n.child);
      }
    }
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kill -9 of one and a restart: after the rebalance every acked event is in the sinks once', async () => {
    redis = await startRedis();
    const out = join(dir, 'out'); // both write here, as both would write to one S3 bucket
    const run = `trb-kill-${Date.now()}`;
    const ports = [
      [await freePort(), await freePort()],
      [await freePort(), await freePort()],
    ];
    const config = (i: number) =>
      aggregatorConfig(ports[i][0], ports[i][1], out, brokers as string, run, {
        node_id: `node-${i}`,
        dedupe: { type: 'redis', redis: { url: redis?.url }, claim_ttl_ms: 30_000, claim_wait_ms: 3000 },
      });
    const start = (i: number) => startRole('aggregator', config(i), join(dir, `node-${i}`), ports[i][1]);
    nodes[0] = await start(0);
    nodes[1] = await start(1);
    const senders = [0, 1].map((i) =>
      produce(ports[i][0], { perChunk: 500, maxEvents: 50_000_000, firstId: i * 100_000_000, pauseMs: 10, ackTimeoutMs: 5000 }),
    );
    await waitFor(() => senders.every((s) => s.stats.acked.size >= 20_000), 60_000, 'both nodes taking load');
    (nodes[0] as Started).child.kill('SIGKILL');
    await exited((nodes[0] as Started).child);
    await new Promise((r) => setTimeout(r, 2000));
    nodes[0] = await start(0);
    const ackedAtRestart = senders[0].stats.acked.size;
    await waitFor(() => senders[0].stats.acked.size >= ackedAtRestart + 20_000, 90_000, 'the restarted node taking load');
    await Promise.all(senders.map((s) => s.stop()));
    const acked = senders.flatMap((s) => [...s.stats.acked]);
    let result = tally(out, acked);
    const deadline = Date.now() + 120_000;
    while (result.missing > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      result = tally(out, acked);
    }
    console.log(
      `kafka kill -9: ${acked.length} events acked by 2 nodes, ${result.lines} lines in the sink, ${result.missing} missing, ${result.twice} twice`,
    );
    expect({ missing: result.missing, twice: result.twice }).toEqual({ missing: 0, twice: 0 });
    for (const n of nodes) {
      (n as Started).child.kill('SIGTERM');
      expect(await exited((n as Started).child)).toBe(0);
    }
  }, 300_000);
});
