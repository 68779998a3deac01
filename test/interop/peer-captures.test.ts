/**
 * The bytes real peers wrote (Fluentd 1.18.0, Fluent Bit 4.2.8, captured in
 * `<repo root>/../shared/fixtures/forward/`, described byte by byte in its
 * README) replayed into a running aggregator, and into a forwarder in front
 * of an aggregator: every event lands in the file sink as its record, with
 * its `_time` to the nanosecond, its tag and (Fluent Bit's metadata form) its
 * `_metadata`; nothing goes to the dead letters.
 *
 * A capture is sent as it was written, on one connection, less its PING
 * (the handshake captures' digests answer another server's nonce; these
 * servers run without `<security>`).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { FrameDecoder, readArrayHeader, readBytes } from '@tributary/forward-protocol';
import { type Started, freePort, readOutput, startRole, tempDir, waitFor } from '@tributary/test-kit';
import { fileSinkAggregator } from './file-sink-aggregator';

const CAPTURES = join(__dirname, '..', '..', '..', 'shared', 'fixtures', 'forward');

interface Expected {
  tag: string;
  time: string;
  record: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** The main table's events n = 1..3 (README: "Event content"). */
const hello = (tag: string, metadata?: Array<Record<string, unknown>>): Expected[] =>
  [1, 2, 3].map((n) => ({
    tag,
    time: `2023-11-14T22:13:2${n}.${String(n * 100000001).padStart(9, '0')}Z`,
    record: { msg: `hello ${n}`, n },
    ...(metadata && Object.keys(metadata[n - 1]).length ? { metadata: metadata[n - 1] } : {}),
  }));

/**
 * Every capture that carries events, with what the README says they hold.
 * Left out: fluentbit-handshake-client.bin, whose Forward message has the same
 * entries and the same chunk id as fluentbit-forward-ack.bin (Fluent Bit's
 * chunk id is a hash of the entries): dedupe, keyed by chunk id and entries,
 * rightly writes that chunk once, so replaying both would test dedupe, not the
 * encoding (which fluentbit-forward-ack.bin covers byte for byte).
 */
const EVENTS: Record<string, Expected[]> = {
  'fluentd-packed.bin': hello('test.packed'),
  'fluentd-packed-ack.bin': hello('test.ack'),
  'fluentd-gzip.bin': hello('test.gzip'),
  'fluentd-handshake-client.bin': hello('test.secure'),
  'fluentbit-forward.bin': hello('fb.default'),
  'fluentbit-forward-ack.bin': hello('fb.ack'),
  'fluentbit-gzip.bin': hello('fb.gzip'),
  'fluentbit-metadata.bin': hello('fb.meta', [{ meta: 'm1' }, { meta: 'm2' }, {}]),
  'inforward-request.bin': hello('probe.ack').slice(0, 1),
  'fluentd-handshake.bin': [1, 2, 3].map((n) => ({
    tag: 'app.fluentd',
    time: `2026-11-18T11:06:40.00000000${n}Z`,
    record: { msg: `hello ${n}`, n },
  })),
  'fluentbit-handshake.bin': ['682027504', '758858804', '858859758'].map((ns) => ({
    tag: 'app.fluentbit',
    time: `2026-11-22T12:55:38.${ns}Z`,
    record: { msg: 'hello from fluent-bit', n: 1 },
  })),
  'inforward-probe.bin': [{ tag: 'app.probe', time: '2026-11-18T11:06:40.000000005Z', record: { msg: 'probe', n: 5 } }],
};

const present = existsSync(CAPTURES);
// The captures live beside the repository (../shared); a checkout without them has nothing to replay.
const maybe = present ? describe : describe.skip;

/** The capture's frames less any PING, back to back. */
function withoutPing(bytes: Buffer): Buffer {
  const frames = new FrameDecoder().push(bytes);
  return Buffer.concat(
    frames.filter((f) => {
      const arr = readArrayHeader(f, 0, f.length);
      const first = arr && readBytes(f, arr.next, f.length);
      return !(first && f.toString('latin1', first.start, first.end) === 'PING');
    }),
  );
}

/** Sends `bytes` on one connection; resolves once an ack came (when `ack`), or after a short wait, then closes. */
function replay(port: number, bytes: Buffer, ack: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const s: Socket = connect(port, '127.0.0.1', () => s.write(bytes));
    const done = () => {
      s.end();
      resolve(Buffer.concat(got));
    };
    s.on('data', (d) => {
      got.push(d);
      if (ack && Buffer.concat(got).includes('ack')) done();
    });
    s.on('error', reject);
    setTimeout(done, ack ? 10_000 : 500).unref();
  });
}

/** Every file under `dir` whose path holds `_dead_letter`. */
function deadLetterFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('_dead_letter'));
}

async function expectAllRecords(outDir: string, metricsPort: number): Promise<void> {
  const want = Object.values(EVENTS).flat();
  await waitFor(() => readOutput(outDir).lines.length >= want.length, 30_000, `${want.length} records in the file sink`);
  const { lines } = readOutput(outDir);
  const got = lines.map((l) => {
    const { _id, _time, _tag, _metadata, ...record } = l;
    return { tag: _tag, time: _time, record, ...(_metadata ? { metadata: _metadata } : {}) };
  });
  const order = (e: { tag: unknown; time: unknown }) => `${e.tag} ${e.time}`;
  expect(got.sort((a, b) => order(a).localeCompare(order(b)))).toEqual(want.sort((a, b) => order(a).localeCompare(order(b))));
  expect(deadLetterFiles(outDir)).toEqual([]);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const dead = [...metrics.matchAll(/^tributary_egress_dead_letter_events_total\{reason="(\w+)"\} (\d+)$/gm)];
  expect(dead.map((m) => m[1]).sort()).toEqual(['depth', 'encoder', 'malformed', 'shape']);
  expect(dead.every((m) => m[2] === '0')).toBe(true);
}

async function replayAll(port: number): Promise<void> {
  for (const file of Object.keys(EVENTS)) {
    const bytes = withoutPing(readFileSync(join(CAPTURES, file)));
    const reply = await replay(port, bytes, bytes.includes('chunk'));
    if (bytes.includes('chunk')) expect({ file, acked: reply.includes('ack') }).toEqual({ file, acked: true });
  }
}

maybe('captured Fluentd and Fluent Bit bytes reach the file sink as records', () => {
  const started: Started[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const p of started.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  test('replayed into an aggregator (embedded log, file sink)', async () => {
    const dir = tempDir('captures-agg');
    dirs.push(dir);
    const [forwardPort, metricsPort] = [await freePort(), await freePort()];
    started.push(await startRole('aggregator', fileSinkAggregator(dir, forwardPort, metricsPort), dir, metricsPort));
    await replayAll(forwardPort);
    await expectAllRecords(join(dir, 'out'), metricsPort);
  }, 90_000);

  test('replayed into a forwarder in front of an aggregator', async () => {
    const dir = tempDir('captures-fwd');
    dirs.push(dir);
    const [aggPort, aggMetrics, fwdPort, fwdMetrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
    started.push(await startRole('aggregator', fileSinkAggregator(dir, aggPort, aggMetrics), dir, aggMetrics));
    const forwarder = {
      forward: { bind: '127.0.0.1', port: fwdPort, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: join(dir, 'buffer'), flush_interval_ms: 100 },
      output: { servers: [{ host: '127.0.0.1', port: aggPort }], ack_timeout_ms: 5000, retry: { initial_ms: 50, max_ms: 500 } },
      metrics: { port: fwdMetrics },
      log_level: 'warn',
    };
    started.push(await startRole('forwarder', forwarder, dir, fwdMetrics));
    await replayAll(fwdPort);
    await expectAllRecords(join(dir, 'out'), aggMetrics);
  }, 90_000);
});
