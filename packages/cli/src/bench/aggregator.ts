/**
 * Aggregator benchmark, end to end on loopback: this process sends
 * PackedForward chunks (1,000 ~200-byte events, ack per chunk, 8 unacked per
 * connection; CompressedPackedForward with `--compress gzip`) to one aggregator process on its defaults (embedded log,
 * embedded dedupe), run with the node flags it is deployed with (role-process.ts), that writes every event to a sink:
 *
 *   file  gzip NDJSON objects on local disk (fdatasync + rename)
 *   s3    gzip NDJSON objects PUT to s3rver (a real S3 HTTP server, in its own process)
 *
 * Reported, from the sender's first request:
 * - delivered (the headline): events the sink confirmed (written, synced,
 *   renamed, or PUT) per second, up to the moment the last one was
 *   confirmed: what users get;
 * - ingest only (stage): events acked per second while sending, a
 *   stage-local figure printed under the delivered one, never in its place;
 * - sustained delivery while ingest ran, the backlog when sending stopped and
 *   how long it took to drain; the aggregator's peak RSS and CPU seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { sendPacked } from './forwarder';
import { freePort, peakRssMb, startCpuMeter, stopProcess, track, waitHealthy } from './loopback';
import { spawnRole, stopRole } from './role-process';
import { type BenchResult, percentile } from './stats';

export type AggregatorBenchSink = 'file' | 's3';
/** The durable log between ingest and egress: the embedded disk log, or a topic on the Kafka brokers in KAFKA_BROKERS. */
export type AggregatorBenchLog = 'embedded' | 'kafka';
/** How the sender sends its chunks: PackedForward, or CompressedPackedForward (gzip). */
export type AggregatorBenchCompress = 'none' | 'gzip';

export interface AggregatorBenchReport {
  /** Stage-local: events acked while sending; not what reached the sink. */
  ingest: BenchResult;
  /** End to end: sender's ack -> confirmed by the sink. */
  delivered: BenchResult;
  notes: string[];
}

/** Most time to wait for the sink to catch up after sending stops. */
const DRAIN_LIMIT_MS = 180_000;

/** Scrapes of /metrics tried before the bench gives up (a loaded machine can refuse or reset one). */
const SCRAPE_ATTEMPTS = 5;

async function sinkEvents(metricsPort: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const m = /^tributary_aggregator_sink_events_total\{sink="out"\} (\d+)/m.exec(text);
      return m ? Number(m[1]) : 0;
    } catch (err) {
      if (attempt >= SCRAPE_ATTEMPTS)
        throw new Error(`Scraping the aggregator's /metrics failed ${attempt} times: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/** s3rver in a child process of its own (its CPU is not the sender's), resolved from where the CLI runs. */
async function startS3rver(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  let s3rverPath: string;
  try {
    s3rverPath = require.resolve('s3rver', { paths: [process.cwd(), __dirname] });
  } catch {
    throw new Error('The s3 bench needs the s3rver package (a devDependency of the repository): run it from a checkout.');
  }
  const script = `const S3rver = require(${JSON.stringify(s3rverPath)});
new S3rver({ port: ${port}, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(join(dir, 's3'))}, configureBuckets: [{ name: 'bench' }] })
  .run().then(() => process.send('ready'), (e) => { console.error(e); process.exit(1); });`;
  const child = track(spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code} before it was ready.`)));
  });
  return { port, child };
}

/** The aggregator's `log:` for the bench: a fresh topic (3 partitions) per run on Kafka, so no run reads another's records. */
function kafkaConfig(log: AggregatorBenchLog): { log: object; egress: object } | null {
  if (log === 'embedded') return null;
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('bench aggregator --log kafka needs KAFKA_BROKERS (host:port,…) of a running Kafka 2.1+ cluster.');
  const run = `trb-bench-${Date.now()}`;
  return {
    log: {
      type: 'kafka',
      kafka: { brokers: brokers.split(','), topic: run, partitions: 3, replication_factor: 1, min_insync_replicas: 1 },
    },
    egress: { group: run },
  };
}

export async function runAggregatorBench(
  seconds: number,
  connections: number,
  sink: AggregatorBenchSink,
  log: AggregatorBenchLog = 'embedded',
  compress: AggregatorBenchCompress = 'none',
  /** egress.encoder_threads; the aggregator's default (auto) when absent */
  encoderThreads?: number,
): Promise<AggregatorBenchReport> {
  const kafka = kafkaConfig(log);
  const dir = mkdtempSync(join(tmpdir(), 'trb-bench-agg-'));
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const s3 = sink === 's3' ? await startS3rver(dir) : null;
  const sinkConfig = s3
    ? {
        name: 'out',
        type: 'aws_s3',
        bucket: 'bench',
        prefix: 'logs',
        endpoint: `http://127.0.0.1:${s3.port}`,
        force_path_style: true,
        access_key_id: 'S3RVER',
        secret_access_key: 'S3RVER',
      }
    : { name: 'out', type: 'file', path: join(dir, 'out') };
  const config = join(dir, 'aggregator.yaml');
  writeFileSync(
    config,
    stringify({
      node_id: 'bench',
      forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
      log: kafka?.log ?? { path: join(dir, 'log') },
      egress: {
        ...kafka?.egress,
        ...(encoderThreads === undefined ? {} : { encoder_threads: encoderThreads }),
        routes: [{ match: '**', sinks: ['out'] }],
      },
      sinks: [sinkConfig],
      metrics: { port: metricsPort },
      log_level: 'warn',
    }),
  );
  const agg = spawnRole('aggregator', config);
  try {
    await waitHealthy(metricsPort, 'The aggregator', () => agg.exitCode === null);
    const start = Date.now();
    const cpuUsed = startCpuMeter({ aggregator: agg.pid as number, ...(s3 ? { s3rver: s3.child.pid as number } : {}) });
    const sent = await sendPacked(forwardPort, seconds, connections, compress);
    const sendEnd = Date.now();
    const deliveredAtSendEnd = await sinkEvents(metricsPort);
    let delivered = deliveredAtSendEnd;
    while (delivered < sent.sentEvents && Date.now() - sendEnd < DRAIN_LIMIT_MS && agg.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
      delivered = await sinkEvents(metricsPort);
    }
    const lastDelivered = Date.now();
    const cpu = cpuUsed();
    const rss = peakRssMb(agg.pid as number);
    const sendSeconds = (sendEnd - start) / 1000;
    const threads = encoderThreads === undefined ? '' : `, ${encoderThreads} encoder threads`;
    const name = `${log} log, ${sink} sink, gzip NDJSON, ${connections} conns${compress === 'gzip' ? ', sent gzipped' : ''}${threads}`;
    const notes = [
      `  sent and acked ${sent.sentEvents.toLocaleString('en-US')} events in ${sendSeconds.toFixed(1)} s; the sink confirmed ${delivered.toLocaleString('en-US')}${delivered < sent.sentEvents ? ' (INCOMPLETE: drain limit reached)' : ''}`,
      `  delivered while sending: ${Math.round(deliveredAtSendEnd / sendSeconds).toLocaleString('en-US')} events/s; backlog when sending stopped: ${(sent.sentEvents - deliveredAtSendEnd).toLocaleString('en-US')} events, drained in ${((lastDelivered - sendEnd) / 1000).toFixed(1)} s`,
      `  delivered / ingest only: ${(delivered / ((lastDelivered - start) / 1000) / (sent.sentEvents / sendSeconds)).toFixed(2)}`,
    ];
    return {
      ingest: {
        name: `aggregator ingest only (stage: acked, not delivered), ${name}`,
        events: sent.sentEvents,
        bytes: sent.sentBytes,
        seconds: sendSeconds,
        p99Ms: percentile(
          sent.latencies.sort((a, b) => a - b),
          99,
        ),
        peakRssMb: rss,
      },
      delivered: {
        name: `aggregator delivered end to end (ack -> ${sink} sink), ${name}`,
        events: delivered,
        sentEvents: sent.sentEvents,
        bytes: sent.sentBytes * (delivered / Math.max(1, sent.sentEvents)),
        seconds: (lastDelivered - start) / 1000,
        peakRssMb: rss,
        cpu,
      },
      notes,
    };
  } finally {
    await stopRole(agg);
    if (s3) await stopProcess(s3.child);
    rmSync(dir, { recursive: true, force: true });
  }
}
