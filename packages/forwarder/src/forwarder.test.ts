import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyFilesystem, silentLogger, validateConfig } from '@tributary/core';
import {
  EventTime,
  ForwardConnection,
  FrameDecoder,
  encodeEntry,
  encodeMessage,
  encodePackedForward,
  readRaw,
} from '@tributary/forward-protocol';
import { startRecordingServer, waitFor } from '@tributary/test-kit';
import { forwarderConfigSpec } from './config';
import { Forwarder } from './forwarder';

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
const portOf = (s: Server) => (s.address() as { port: number }).port;

test('a start that fails on a taken port stops what it had started: the forward port is free again and the buffer reopens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-start-'));
  const taken = await listen();
  const probe = await listen();
  const forwardPort = portOf(probe);
  await close(probe);
  try {
    const config = validateConfig(forwarderConfigSpec, {
      forward: { port: forwardPort, udp_heartbeat: false },
      http: { port: portOf(taken) },
      buffer: { path: dir },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: 1 }] },
    });
    await expect(Forwarder.start(config, silentLogger)).rejects.toThrow(/EADDRINUSE/);
    await close(await listen(forwardPort));

    const retried = await Forwarder.start({ ...config, http: { ...config.http, port: 0 } }, silentLogger);
    expect(retried.ports.forward).toBe(forwardPort);
    await retried.stop();
  } finally {
    await close(taken);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a start whose forward port is taken rejects, and a retry on a free port starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-start-'));
  const taken = await listen();
  try {
    const config = validateConfig(forwarderConfigSpec, {
      forward: { port: portOf(taken) },
      http: { enabled: false },
      buffer: { path: dir },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: 1 }] },
    });
    await expect(Forwarder.start(config, silentLogger)).rejects.toThrow(/EADDRINUSE/);
    const retried = await Forwarder.start({ ...config, forward: { ...config.forward, port: 0 } }, silentLogger);
    expect(retried.ports.http).toBeNull();
    await retried.stop();
  } finally {
    await close(taken);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('filters run before the buffer: dropped events are never buffered or sent, kept ones carry the changes, counts are exported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-filters-'));
  const sink = await startRecordingServer();
  const forwarder = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: dir, flush_interval_ms: 50 },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: sink.port }] },
      filters: [
        { type: 'grep', match: 'app.**', exclude: [{ key: 'level', pattern: '^debug$' }] },
        { type: 'record', match: 'app.**', set: { host: 'h-${tag_parts[1]}' } },
        { type: 'mask', builtin: ['email'] },
      ],
    }),
    silentLogger,
  );
  try {
    const conn = await ForwardConnection.connect({
      host: '127.0.0.1',
      port: forwarder.ports.forward,
      ackTimeoutMs: 5000,
      connectTimeoutMs: 1000,
    });
    const records = [{ level: 'debug', m: 'a@b.io' }, { level: 'info', m: 'a@b.io' }, { level: 'debug' }, { level: 'warn' }];
    const entries = Buffer.concat(records.map((r) => encodeEntry(new EventTime(1700000000, 0), r)));
    await conn.send(encodePackedForward('app.web', entries, { chunk: 'c1', size: 4 }), 'c1');
    await conn.send(encodePackedForward('other', encodeEntry(1700000000, { level: 'debug', m: 'x@y.io' }), { chunk: 'c2', size: 1 }), 'c2');
    await conn.end();
    await waitFor(() => sink.events.length >= 3, 10_000, 'three events at the aggregator');
    // The two chunks are buffered and sent apart, so they may arrive in either order; each keeps its events' order.
    const byTag = (e: { tag: string }) => (e.tag === 'other' ? 1 : 0);
    expect([...sink.events].sort((a, b) => byTag(a) - byTag(b)).map((e) => [e.tag, e.record])).toEqual([
      ['app.web', { level: 'info', m: '[REDACTED]', host: 'h-web' }],
      ['app.web', { level: 'warn', host: 'h-web' }],
      ['other', { level: 'debug', m: '[REDACTED]' }],
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${forwarder.ports.metrics}/metrics`)).text();
    expect(metrics).toContain('tributary_forwarder_filter_dropped_events_total{filter="0_grep"} 2');
    expect(metrics).toContain('tributary_forwarder_input_events_total{input="forward"} 5');
  } finally {
    await forwarder.stop();
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a chunk whose last piece the filters drop whole is remembered as acked: its resend is not buffered again, after a restart neither', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-filtered-ids-'));
  const sink = await startRecordingServer();
  const config = validateConfig(forwarderConfigSpec, {
    forward: { port: 0, udp_heartbeat: false },
    http: { enabled: false },
    // 1 KiB pieces: the chunk below is handed to the buffer in two, its id on the second, which holds only debug events
    buffer: { path: dir, flush_interval_ms: 50, chunk_limit_bytes: 1024 },
    metrics: { port: 0 },
    output: { servers: [{ host: '127.0.0.1', port: sink.port }] },
    filters: [{ type: 'grep', exclude: [{ key: 'level', pattern: '^debug$' }] }],
  });
  const pad = 'x'.repeat(280);
  const levels = ['info', 'info', 'info', 'debug', 'debug', 'debug'];
  const entries = Buffer.concat(levels.map((level, i) => encodeEntry(new EventTime(1700000000, i), { level, i, pad })));
  const chunk = encodePackedForward('app.web', entries, { chunk: 'c1', size: levels.length });
  const marker = (id: string) => encodePackedForward('marker', encodeEntry(1700000000, { id }), { chunk: id, size: 1 });
  const sendAll = async (port: number, frames: Array<[Buffer, string]>) => {
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 5000, connectTimeoutMs: 1000 });
    for (const [frame, id] of frames) await conn.send(frame, id);
    await conn.end();
  };
  const resent = async (f: Forwarder) =>
    (await (await fetch(`http://127.0.0.1:${f.ports.metrics}/metrics`)).text()).match(
      /tributary_forwarder_input_resent_chunks_total (\d+)/,
    )?.[1];
  const appEvents = () => sink.events.filter((e) => e.tag === 'app.web').map((e) => e.record.i);
  let forwarder = await Forwarder.start(config, silentLogger);
  try {
    await sendAll(forwarder.ports.forward, [[chunk, 'c1']]);
    await sendAll(forwarder.ports.forward, [
      [chunk, 'c1'],
      [marker('m1'), 'm1'],
    ]);
    await waitFor(() => sink.events.some((e) => e.tag === 'marker'), 10_000, 'the first marker at the aggregator');
    await waitFor(() => appEvents().length >= 3, 10_000, 'the kept events at the aggregator');
    expect(await resent(forwarder)).toBe('1');
    await forwarder.stop();

    forwarder = await Forwarder.start(config, silentLogger);
    await sendAll(forwarder.ports.forward, [
      [chunk, 'c1'],
      [marker('m2'), 'm2'],
    ]);
    await waitFor(() => sink.events.filter((e) => e.tag === 'marker').length >= 2, 10_000, 'the second marker at the aggregator');
    expect(await resent(forwarder)).toBe('1');
    expect(appEvents()).toEqual([0, 1, 2]);
  } finally {
    await forwarder.stop();
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.each([false, true])(
  'a chunk stored in pieces and refused half-way is resent and buffered once (restart between: %s): the pieces stored before are not stored again',
  async (restart) => {
    const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-pieces-'));
    const sink = await startRecordingServer();
    const fs = new FaultyFilesystem();
    const config = validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      // 1 KiB pieces: the chunk below is handed to the buffer in three (3 events each)
      buffer: { path: dir, flush_interval_ms: 50, chunk_limit_bytes: 1024 },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: sink.port }] },
    });
    const pad = 'x'.repeat(280);
    const entries = Buffer.concat(Array.from({ length: 9 }, (_, i) => encodeEntry(new EventTime(1700000000, i), { i, pad })));
    const chunk = encodePackedForward('app.web', entries, { chunk: 'c1', size: 9 });
    const marker = encodePackedForward('marker', encodeEntry(1700000000, { id: 'm1' }), { chunk: 'm1', size: 1 });
    const send = async (port: number, frame: Buffer, id: string) => {
      const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 5000, connectTimeoutMs: 1000 });
      try {
        await conn.send(frame, id);
      } finally {
        await conn.end().catch(() => {});
      }
    };
    let forwarder = await Forwarder.start(config, silentLogger, { fs });
    try {
      // The second append to a chunk file (the second piece's) fails once: the first piece is stored, the chunk is not acked.
      let appends = 0;
      const writev = fs.writevSync.bind(fs);
      jest.spyOn(fs, 'writevSync').mockImplementation((fd, buffers, position) => {
        if (position === undefined && ++appends === 2) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        return writev(fd, buffers, position);
      });
      await expect(send(forwarder.ports.forward, chunk, 'c1')).rejects.toThrow();
      expect(appends).toBe(2);
      jest.restoreAllMocks();
      if (restart) {
        await forwarder.stop();
        forwarder = await Forwarder.start(config, silentLogger, { fs });
      }
      // The client resends the chunk: its first piece is known by its piece id (remembered, or journaled), the other two are stored.
      await send(forwarder.ports.forward, chunk, 'c1');
      await send(forwarder.ports.forward, marker, 'm1');
      await waitFor(() => sink.events.some((e) => e.tag === 'marker'), 10_000, 'the marker at the aggregator');
      await waitFor(() => sink.events.filter((e) => e.tag === 'app.web').length >= 9, 10_000, 'the chunk at the aggregator');
      await new Promise((r) => setTimeout(r, 200)); // a duplicate would be sent with them
      const got = sink.events.filter((e) => e.tag === 'app.web').map((e) => e.record.i as number);
      expect(got.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      // the first piece, left out as stored, is counted as resent
      const metrics = await (await fetch(`http://127.0.0.1:${forwarder.ports.metrics}/metrics`)).text();
      expect(metrics).toMatch(/^tributary_forwarder_input_resent_chunks_total 1$/m);
    } finally {
      jest.restoreAllMocks();
      await forwarder.stop();
      await sink.server.close(0);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a chunk cut at its input and again after a filter grew its records is buffered whole, and a resend of it not again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-recut-'));
  const sink = await startRecordingServer();
  const config = validateConfig(forwarderConfigSpec, {
    forward: { port: 0, udp_heartbeat: false },
    http: { enabled: false },
    // 1 KiB pieces: 12 events of ~300 B are cut into pieces of 3 at the input; the filter grows each to ~550 B, so
    // every piece is cut again after it into pieces of one event of the same size (the last piece too, which carries
    // the chunk's own id)
    buffer: { path: dir, flush_interval_ms: 50, chunk_limit_bytes: 1024 },
    metrics: { port: 0 },
    output: { servers: [{ host: '127.0.0.1', port: sink.port }] },
    filters: [{ type: 'record', set: { note: 'n'.repeat(240) } }],
  });
  const pad = 'x'.repeat(280);
  const entries = Buffer.concat(Array.from({ length: 12 }, (_, i) => encodeEntry(new EventTime(1700000000, i), { i, pad })));
  const chunk = encodePackedForward('app.web', entries, { chunk: 'c1', size: 12 });
  const marker = (id: string) => encodePackedForward('marker', encodeEntry(1700000000, { id }), { chunk: id, size: 1 });
  const forwarder = await Forwarder.start(config, silentLogger);
  try {
    const conn = await ForwardConnection.connect({ host: '127.0.0.1', port: forwarder.ports.forward, ackTimeoutMs: 5000 });
    await conn.send(chunk, 'c1');
    await conn.send(chunk, 'c1');
    await conn.send(marker('m1'), 'm1');
    await conn.end();
    await waitFor(() => sink.events.some((e) => e.tag === 'marker'), 10_000, 'the marker at the aggregator');
    await waitFor(() => sink.events.filter((e) => e.tag === 'app.web').length >= 12, 10_000, 'the chunk at the aggregator');
    await new Promise((r) => setTimeout(r, 200)); // a duplicate would be sent with them
    const got = sink.events.filter((e) => e.tag === 'app.web');
    expect(got.map((e) => e.record.i as number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(got.every((e) => e.record.note === 'n'.repeat(240))).toBe(true);
  } finally {
    await forwarder.stop();
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fluent-logger's acked messages, many per write, resent before and after a restart, are buffered and delivered once each", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-resend-'));
  const sink = await startRecordingServer();
  const config = (outputPort: number) =>
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: dir, flush_interval_ms: 50 },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: outputPort }] },
    });
  const id = (i: number) => `fl-${i}`;
  const frames = Buffer.concat(
    Array.from({ length: 200 }, (_, i) => encodeMessage('app.fl', new EventTime(1700000000, i), { i }, { chunk: id(i) })),
  );
  /** Writes the 200 messages in one write and resolves with the ids of the acks, in the order they came. */
  const sendAll = async (port: number): Promise<string[]> => {
    const socket = connect(port, '127.0.0.1');
    const decoder = new FrameDecoder();
    const acked: string[] = [];
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (d) => {
        for (const f of decoder.push(d)) acked.push((readRaw(f, 0, f.length).value as Map<string, Buffer>).get('ack')?.toString() ?? '?');
        if (acked.length >= 200) resolve();
      });
      socket.write(frames);
    });
    socket.destroy();
    return acked;
  };
  const all = Array.from({ length: 200 }, (_, i) => id(i));
  try {
    const first = await Forwarder.start(config(1), silentLogger); // nothing is delivered yet: every event stays buffered
    expect(await sendAll(first.ports.forward as number)).toEqual(all);
    expect(await sendAll(first.ports.forward as number)).toEqual(all); // acks lost: the app resends, same ids
    await first.stop();
    const second = await Forwarder.start(config(sink.port), silentLogger);
    try {
      expect(await sendAll(second.ports.forward as number)).toEqual(all); // and again after the restart
      await waitFor(() => sink.events.length >= 200, 10_000, '200 events at the aggregator');
      await new Promise((r) => setTimeout(r, 300)); // time for any duplicate to arrive
      expect(sink.events.map((e) => e.record.i).sort((a, b) => (a as number) - (b as number))).toEqual(
        Array.from({ length: 200 }, (_, i) => i),
      );
      const metrics = await (await fetch(`http://127.0.0.1:${second.ports.metrics}/metrics`)).text();
      expect(metrics).toMatch(/tributary_forwarder_input_resent_chunks_total\S* 200/);
    } finally {
      await second.stop();
    }
  } finally {
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test('with filters, large requests on several connections (assembled in pooled memory, staged in reused buffers) arrive whole and unmixed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-pooled-'));
  const sink = await startRecordingServer();
  const forwarder = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: dir, flush_interval_ms: 50, chunk_limit_bytes: 256 * 1024 },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: sink.port }] },
      filters: [
        { type: 'grep', exclude: [{ key: 'level', pattern: '^debug$' }] },
        { type: 'record', set: { env: 'production' } },
      ],
    }),
    silentLogger,
  );
  try {
    const perChunk = 2000;
    const send = async (conn: number) => {
      const c = await ForwardConnection.connect({
        host: '127.0.0.1',
        port: forwarder.ports.forward,
        ackTimeoutMs: 10_000,
        connectTimeoutMs: 1000,
      });
      for (let k = 0; k < 6; k++) {
        const entries = Buffer.concat(
          Array.from({ length: perChunk }, (_, i) =>
            encodeEntry(new EventTime(1700000000, i), {
              level: i % 4 === 0 ? 'debug' : 'info',
              c: conn,
              k,
              i,
              pad: `${conn}-${k}-${i}-${'z'.repeat(i % 60)}`,
            }),
          ),
        );
        const id = `c${conn}-${k}`;
        await c.send(encodePackedForward(`app.c${conn}`, entries, { chunk: id, size: perChunk }), id);
      }
      await c.end();
    };
    await Promise.all([send(0), send(1), send(2)]);
    const expected = 3 * 6 * perChunk * 0.75;
    await waitFor(() => sink.events.length >= expected, 20_000, 'every kept event at the aggregator');
    expect(sink.events).toHaveLength(expected);
    for (const e of sink.events) {
      const r = e.record as { level: string; c: number; k: number; i: number; pad: string; env: string };
      expect(r).toEqual({ level: 'info', c: r.c, k: r.k, i: r.i, pad: `${r.c}-${r.k}-${r.i}-${'z'.repeat(r.i % 60)}`, env: 'production' });
      expect(e.tag).toBe(`app.c${r.c}`);
    }
    expect(new Set(sink.events.map((e) => `${e.record.c}-${e.record.k}-${e.record.i}`)).size).toBe(expected);
  } finally {
    await forwarder.stop();
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fluent-logger's acked messages resent mixed with new ones, in one write, before and after a restart: acked in order, buffered once", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-mixed-'));
  const sink = await startRecordingServer();
  const config = (outputPort: number) =>
    validateConfig(forwarderConfigSpec, {
      forward: { port: 0, udp_heartbeat: false },
      http: { enabled: false },
      buffer: { path: dir, flush_interval_ms: 50 },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: outputPort }] },
    });
  const id = (i: number) => `mx-${i}`;
  /** Writes messages `is` in one write (merged into runs by the forwarder) and resolves with the ids acked, in order. */
  const send = async (port: number, is: number[]): Promise<string[]> => {
    const socket = connect(port, '127.0.0.1');
    const decoder = new FrameDecoder();
    const acked: string[] = [];
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (d) => {
        for (const f of decoder.push(d)) acked.push((readRaw(f, 0, f.length).value as Map<string, Buffer>).get('ack')?.toString() ?? '?');
        if (acked.length >= is.length) resolve();
      });
      socket.write(Buffer.concat(is.map((i) => encodeMessage('app.mx', new EventTime(1700000000, i), { i }, { chunk: id(i) }))));
    });
    socket.destroy();
    return acked;
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
  try {
    const first = await Forwarder.start(config(1), silentLogger); // nothing is delivered yet: every event stays buffered
    const port = first.ports.forward as number;
    expect(await send(port, range(0, 200))).toEqual(range(0, 200).map(id));
    expect(first.buffer.stats().events).toBe(200);
    // 100..199 resent (acks lost) with 200..299 new, one write: acked in order, only the new ones stored.
    expect(await send(port, range(100, 300))).toEqual(range(100, 300).map(id));
    expect(first.buffer.stats().events).toBe(300);
    await first.stop();
    const second = await Forwarder.start(config(sink.port), silentLogger);
    try {
      const again = [...range(250, 350), ...range(0, 50)]; // after the restart: resent ones around new ones
      expect(await send(second.ports.forward as number, again)).toEqual(again.map(id));
      await waitFor(() => sink.events.length >= 350, 10_000, '350 events at the aggregator');
      await new Promise((r) => setTimeout(r, 300)); // time for any duplicate to arrive
      expect(sink.events.map((e) => e.record.i).sort((a, b) => (a as number) - (b as number))).toEqual(range(0, 350));
      const metrics = await (await fetch(`http://127.0.0.1:${second.ports.metrics}/metrics`)).text();
      expect(metrics).toMatch(/tributary_forwarder_input_resent_chunks_total\S* 100/);
    } finally {
      await second.stop();
    }
  } finally {
    await sink.server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
