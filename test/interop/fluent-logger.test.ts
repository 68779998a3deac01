/**
 * Interop: the app loggers users actually have, sending to Tributary's forward
 * server — the `fluent-logger` npm package in each of its event modes with
 * acks and with a shared key, and Debian's python3-fluent-logger.
 */
import { spawn } from 'node:child_process';
import type { ForwardServer } from '@tributary/forward-protocol';
import { type RecordedEvent, startRecordingServer, waitFor } from '@tributary/test-kit';
import { sendWithFluentLogger } from './fluent-logger-sender';

const servers: ForwardServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

const N = 200;

function expectAllEvents(events: RecordedEvent[], tag: string) {
  expect(events).toHaveLength(N);
  const ns = events.map((e) => e.record.n as number).sort((a, b) => a - b);
  expect(ns).toEqual(Array.from({ length: N }, (_, i) => i));
  for (const e of events) {
    expect(e.tag).toBe(tag);
    const n = e.record.n as number;
    expect(e.time.seconds).toBe(1700000000 + n);
    expect(e.time.nanoseconds).toBe(n * 1000 + 7);
    expect(e.record.msg).toBe(`event ${n} ü`);
  }
}

test.each(['Message', 'PackedForward', 'CompressedPackedForward'])('fluent-logger %s mode with requireAckResponse', async (eventMode) => {
  const { server, port, events, errors } = await startRecordingServer();
  servers.push(server);
  await sendWithFluentLogger(port, N, { eventMode, flushInterval: 10 });
  await waitFor(() => events.length >= N, 10_000, `${N} events`);
  expectAllEvents(events, 'app.web');
  expect(new Set(events.map((e) => e.chunkId)).size).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});

test('fluent-logger with a shared key (security option)', async () => {
  const { server, port, events } = await startRecordingServer({ security: { selfHostname: 'aggregator.test', sharedKey: 'k3y' } });
  servers.push(server);
  await sendWithFluentLogger(port, N, { eventMode: 'Message', security: { clientHostname: 'app.test', sharedKey: 'k3y' } });
  expectAllEvents(events, 'app.web');
});

test("Debian's python3-fluent-logger (Message mode, EventTime)", async () => {
  const { server, port, events } = await startRecordingServer();
  servers.push(server);
  // EventTime built as the library builds it (msgpack ext 0, '>II'), with exact nanoseconds.
  const script = `
import struct, sys
import msgpack
from fluent import sender
s = sender.FluentSender('app', host='127.0.0.1', port=int(sys.argv[1]), nanosecond_precision=True)
for n in range(${N}):
    t = msgpack.ExtType(0, struct.pack('>II', 1700000000 + n, n * 1000 + 7))
    if not s.emit_with_time('web', t, {'msg': 'event %d \\u00fc' % n, 'n': n}):
        print(s.last_error, file=sys.stderr); sys.exit(1)
s.close()
`;
  // A child process, so the event loop keeps serving while Python sends.
  const child = spawn('/usr/bin/python3', ['-c', script, String(port)], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  expect(stderr).toBe('');
  expect(code).toBe(0);
  await waitFor(() => events.length >= N, 10_000, `${N} python events`);
  expectAllEvents(events, 'app.web');
});
