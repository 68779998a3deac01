/**
 * Real clients → forwarder → a receiving Forward server that records what it
 * got: every event delivered once, tag, time and record intact. Also the HTTP
 * input's answers for bad, oversized and over-capacity requests.
 */
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { createLogger, silentLogger, validateConfig } from '@tributary/core';
import type { ForwardServer } from '@tributary/forward-protocol';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { freePort, startRecordingServer, tempDir, waitFor } from '@tributary/test-kit';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

let receiver: Awaited<ReturnType<typeof startRecordingServer>>;
let forwarder: Forwarder;
let dir: string;
const cleanup: ForwardServer[] = [];

beforeAll(async () => {
  receiver = await startRecordingServer();
  cleanup.push(receiver.server);
  dir = tempDir('fwd-clients');
  const config = validateConfig(forwarderConfigSpec, {
    forward: { port: 0 },
    http: { port: 0, body_limit_bytes: 64 * 1024 },
    buffer: { path: dir, flush_interval_ms: 50 },
    output: { servers: [{ host: '127.0.0.1', port: receiver.port }] },
    metrics: { port: 0 },
  });
  forwarder = await Forwarder.start(config, process.env.TRB_TEST_LOGS ? createLogger('test') : silentLogger);
});

afterAll(async () => {
  await forwarder.stop();
  await Promise.all(cleanup.map((s) => s.close(100)));
  rmSync(dir, { recursive: true, force: true });
});

const ofTag = (tag: string) => receiver.events.filter((e) => e.tag === tag);

test('fluent-logger (npm), Message mode with requireAckResponse', async () => {
  const N = 500;
  const sender = fluent.createFluentSender('node', {
    host: '127.0.0.1',
    port: forwarder.ports.forward,
    requireAckResponse: true,
    ackResponseTimeout: 10_000,
    internalLogger: { info() {}, error() {} },
  });
  await Promise.all(
    Array.from(
      { length: N },
      (_, n) =>
        new Promise<void>((resolve, reject) =>
          sender.emit('app', { n, msg: `hello ${n}` }, new fluent.EventTime(1700000000 + n, 999_999_000 + (n % 1000)), (err?: Error) =>
            err ? reject(err) : resolve(),
          ),
        ),
    ),
  );
  sender.end();
  await waitFor(() => ofTag('node.app').length >= N, 15_000, 'node events at the receiver');
  const got = ofTag('node.app');
  expect(got).toHaveLength(N);
  expect(new Set(got.map((e) => e.record.n)).size).toBe(N);
  for (const e of got) {
    const n = e.record.n as number;
    expect(e.record.msg).toBe(`hello ${n}`);
    expect(e.time).toMatchObject({ seconds: 1700000000 + n, nanoseconds: 999_999_000 + (n % 1000) });
  }
  // forwarder → receiver chunks carry the forwarder's own 16-byte ids
  expect(got.every((e) => Buffer.from(e.chunkId ?? '', 'base64').length === 16)).toBe(true);
});

test('python3-fluent-logger (Debian)', async () => {
  const N = 300;
  const script = `
import struct, sys, msgpack
from fluent import sender
s = sender.FluentSender('py', host='127.0.0.1', port=int(sys.argv[1]), nanosecond_precision=True)
for n in range(${N}):
    if not s.emit_with_time('app', msgpack.ExtType(0, struct.pack('>II', 1700000000, n)), {'n': n}):
        print(s.last_error, file=sys.stderr); sys.exit(1)
s.close()
`;
  const child = spawn('/usr/bin/python3', ['-c', script, String(forwarder.ports.forward)], { stdio: ['ignore', 'inherit', 'inherit'] });
  expect(await new Promise((r) => child.on('close', r))).toBe(0);
  await waitFor(() => ofTag('py.app').length >= N, 15_000, 'python events at the receiver');
  const got = ofTag('py.app');
  expect(got).toHaveLength(N);
  expect(got.map((e) => e.time.nanoseconds).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
});

test('curl to the HTTP input: object, array with times, msgpack', async () => {
  const url = `http://127.0.0.1:${forwarder.ports.http}`;
  // curl runs as a child process while this process serves the HTTP input: async, never spawnSync.
  const curl = async (...args: string[]) =>
    (await promisify(execFile)('curl', ['-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...args], { encoding: 'utf8' })).stdout;
  expect(
    await curl('-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"msg":"one"}', `${url}/web.access?time=1700000001.25`),
  ).toBe('200');
  expect(
    await curl(
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '-d',
      '[{"msg":"a","time":1700000002},{"msg":"b","time":1700000003.5}]',
      `${url}/web.access`,
    ),
  ).toBe('200');
  // curl -d sends the literal text \x81… (not bytes): malformed msgpack, so 400; the real bytes via fetch: 200
  expect(await curl('-X', 'POST', '-H', 'Content-Type: application/msgpack', '--data-binary', '\x81\xa3msg\xa2mp', `${url}/web.mp`)).toBe(
    '400',
  );
  const mp = await fetch(`${url}/web.mp`, {
    method: 'POST',
    headers: { 'content-type': 'application/msgpack' },
    body: Buffer.from([0x81, 0xa3, 0x6d, 0x73, 0x67, 0xa2, 0x6d, 0x70]),
  });
  expect(mp.status).toBe(200);
  await waitFor(() => ofTag('web.access').length >= 3 && ofTag('web.mp').length >= 1, 15_000, 'http events');
  expect(ofTag('web.mp').map((e) => e.record)).toEqual([{ msg: 'mp' }]);
  const got = ofTag('web.access').sort((a, b) => a.time.seconds - b.time.seconds);
  expect(got.map((e) => e.record)).toEqual([{ msg: 'one' }, { msg: 'a' }, { msg: 'b' }]);
  expect(got.map((e) => [e.time.seconds, e.time.nanoseconds])).toEqual([
    [1700000001, 250000000],
    [1700000002, 0],
    [1700000003, 500000000],
  ]);
});

test('HTTP input: clear 400 and 413 answers', async () => {
  const url = `http://127.0.0.1:${forwarder.ports.http}`;
  const bad = await fetch(`${url}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
  expect(bad.status).toBe(400);
  expect((await bad.json()).error).toMatch(/element 0 of the array is not an object/);
  const badTime = await fetch(`${url}/x?time=yesterday`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(badTime.status).toBe(400);
  const big = await fetch(`${url}/x`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }),
  });
  expect(big.status).toBe(413);
  expect(ofTag('x')).toHaveLength(0);
});

test('metrics count what went in and out', async () => {
  const text = await (await fetch(`http://127.0.0.1:${forwarder.ports.metrics}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  expect(value('tributary_forwarder_output_events_total')).toBe(receiver.events.length);
  expect(text).toMatch(/tributary_forwarder_input_events_total\{input="forward"\} 800/);
  expect(text).toMatch(/tributary_forwarder_input_errors_total\{input="http",code="TRB_HTTP_TOO_LARGE"\} 1/);
});
