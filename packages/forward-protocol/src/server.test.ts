import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { ForwardConnection } from './client';
import { FrameDecoder } from './decoder';
import { encodeEntry, encodeMessage, encodePackedForward } from './encoder';
import { decodeEntries } from './entries';
import { TributaryError } from './errors';
import { EventTime } from './event-time';
import { encodePing, parseHelo, parsePong } from './handshake';
import type { ForwardChunk } from './request';
import { ForwardServer, type ForwardServerOptions } from './server';

const t = new EventTime(1700000001, 123456789);
const servers: ForwardServer[] = [];

async function start(opts: Partial<ForwardServerOptions> = {}) {
  const received: ForwardChunk[] = [];
  const errors: Error[] = [];
  const server = new ForwardServer({
    port: 0,
    consume: async (chunks) => {
      received.push(...chunks);
    },
    onError: (err) => errors.push(err),
    ...opts,
  });
  const { port } = await server.listen();
  servers.push(server);
  return { server, port, received, errors };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
  });
}

function readReply(socket: Socket, frames = 1): Promise<Buffer[]> {
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  return new Promise((resolve) => {
    socket.on('data', (b) => {
      out.push(...d.push(b));
      if (out.length >= frames) resolve(out);
    });
    socket.on('close', () => resolve(out));
  });
}

test('client → server with handshake and gzip: every event arrives once, acked', async () => {
  const security = { selfHostname: 'agg.test', sharedKey: 's3cret' };
  const { port, received } = await start({ security });
  const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, security: { hostname: 'edge.test', sharedKey: 's3cret' } });
  const sends = [];
  for (let c = 0; c < 20; c++) {
    const entries = Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeEntry(t, { c, i })));
    sends.push(conn.send(encodePackedForward('app.secure', entries, { chunk: `id-${c}`, compressed: 'gzip', size: 50 }), `id-${c}`));
  }
  await Promise.all(sends);
  await conn.end();
  expect(received.reduce((n, c) => n + c.count, 0)).toBe(1000);
  const seen = new Set(received.flatMap((c) => decodeEntries(c.entries).map((e) => `${e.record.c}/${e.record.i}`)));
  expect(seen.size).toBe(1000);
  expect(received.every((c) => c.tag === 'app.secure' && c.mode === 'compressed')).toBe(true);
  expect(decodeEntries(received[0].entries)[0].time).toEqual(t);
});

test('wrong shared key: PONG false with a reason, no data accepted', async () => {
  const { port, received, errors } = await start({ security: { selfHostname: 'agg', sharedKey: 'right' } });
  await expect(ForwardConnection.connect({ host: '127.0.0.1', port, security: { hostname: 'edge', sharedKey: 'wrong' } })).rejects.toThrow(
    /shared_key mismatch/,
  );
  expect(received).toHaveLength(0);
  expect(errors[0]?.message).toMatch(/Authentication failed/);
});

test('user authentication and per-client keys', async () => {
  const { port } = await start({
    security: {
      selfHostname: 'agg',
      sharedKey: 'default',
      userAuth: true,
      users: [{ username: 'alice', password: 'pw' }],
      clients: [{ host: '127.0.0.1', sharedKey: 'loopback-key', users: ['alice'] }],
      allowAnonymousSource: false,
    },
  });
  const ok = await ForwardConnection.connect({
    host: '127.0.0.1',
    port,
    security: { hostname: 'e', sharedKey: 'loopback-key', username: 'alice', password: 'pw' },
  });
  await ok.send(encodeMessage('a', t, { x: 1 }, { chunk: 'k' }), 'k');
  await ok.end();
  await expect(
    ForwardConnection.connect({
      host: '127.0.0.1',
      port,
      security: { hostname: 'e', sharedKey: 'loopback-key', username: 'alice', password: 'bad' },
    }),
  ).rejects.toThrow(/username\/password mismatch/);
  await expect(
    ForwardConnection.connect({
      host: '127.0.0.1',
      port,
      security: { hostname: 'e', sharedKey: 'default', username: 'alice', password: 'pw' },
    }),
  ).rejects.toThrow(/shared_key mismatch/);
});

test('client refuses a server with its own hostname', async () => {
  const { port } = await start({ security: { selfHostname: 'same', sharedKey: 'k' } });
  await expect(ForwardConnection.connect({ host: '127.0.0.1', port, security: { hostname: 'same', sharedKey: 'k' } })).rejects.toThrow(
    /equals this client/,
  );
});

test('data before PING gets the invalid-ping PONG and the connection closes', async () => {
  const { port, received } = await start({ security: { selfHostname: 'agg', sharedKey: 'k' } });
  const s = await rawConnect(port);
  const replies = readReply(s, 2);
  s.write(encodeMessage('a', t, { x: 1 }, { chunk: 'c' }));
  const [helo, pong] = await replies;
  expect(parseHelo(helo).nonce).toHaveLength(16);
  expect(parsePong(pong)).toMatchObject({ ok: false, reason: 'invalid ping message' });
  expect(received).toHaveLength(0);
  s.destroy();
});

test('a rejected consume gets no ack and the connection closes; the sender sees a retriable error', async () => {
  const { port } = await start({
    consume: async () => {
      throw new Error('downstream full');
    },
  });
  const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 5000 });
  const err = await conn.send(encodeMessage('a', t, { x: 1 }, { chunk: 'c1' }), 'c1').catch((e) => e);
  expect(err).toBeInstanceOf(TributaryError);
  expect(err.retriable).toBe(true);
});

test('bad bytes close only their own connection; earlier chunks in the same read are acked', async () => {
  const { port, received, errors } = await start();
  const good = await ForwardConnection.connect({ host: '127.0.0.1', port });
  const bad = await rawConnect(port);
  const badReplies = readReply(bad, 1);
  bad.write(Buffer.concat([encodeMessage('ok', t, { x: 1 }, { chunk: 'first' }), Buffer.from([0x93, 0xa1, 0x61, 0xc1])]));
  const [ack] = await badReplies;
  expect(ack.toString('latin1')).toContain('first');
  await new Promise((r) => bad.once('close', r));
  await good.send(encodeMessage('still', t, { x: 2 }, { chunk: 'g' }), 'g');
  expect(received.map((c) => c.tag)).toEqual(['ok', 'still']);
  expect(errors[0].message).toMatch(/0xc1/);
  await good.end();
});

test('an oversized frame is refused without an ack, other connections unaffected', async () => {
  const { port, received, errors } = await start({ maxFrameBytes: 4096 });
  const s = await rawConnect(port);
  const closed = new Promise((r) => s.once('close', r));
  s.on('error', () => {});
  s.write(encodePackedForward('big', encodeEntry(t, { pad: 'x'.repeat(10_000) }), { chunk: 'big' }));
  await closed;
  expect(received).toHaveLength(0);
  expect(errors[0].message).toMatch(/frame limit of 4096 bytes/);
});

test('a stream of Message-mode requests arrives intact: runs of one tag become one chunk, options and odd times keep their own', async () => {
  const { port, received } = await start();
  const s = await rawConnect(port);
  const expected: Array<{ tag: string; record: Record<string, unknown> }> = [];
  const frames: Buffer[] = [];
  const add = (tag: string, time: EventTime | number, record: Record<string, unknown>, chunk?: string) => {
    expected.push({ tag, record });
    if (typeof time === 'number' && !Number.isInteger(time)) {
      const float = Buffer.alloc(9);
      float[0] = 0xcb;
      float.writeDoubleBE(time, 1);
      frames.push(Buffer.concat([Buffer.from([0x93]), pack(tag), float, pack(record)]));
    } else {
      frames.push(encodeMessage(tag, time, record, chunk ? { chunk } : {}));
    }
  };
  for (let i = 0; i < 30; i++) add('app.a', t, { i, msg: 'é'.repeat(i % 5) });
  add('app.a', t, { i: 30 }, 'ack-1'); // an option: its own chunk, acked
  for (let i = 31; i < 40; i++) add('app.b', 1700000002, { i }); // int time
  add('app.b', 0, { i: 40 }); // time 0: stamped "now"
  for (let i = 41; i < 50; i++) add('app.a', 1700000003.5, { i }); // float time
  add('app.c', t, { i: 50 }, 'ack-2');
  const wire = Buffer.concat(frames);
  const replies = readReply(s, 2);
  // Split at an odd place so a request straddles two reads.
  s.write(wire.subarray(0, 1001));
  await new Promise((r) => setTimeout(r, 20));
  s.write(wire.subarray(1001));
  const acks = await replies;
  expect(acks.map((a) => a.toString('latin1'))).toEqual([expect.stringContaining('ack-1'), expect.stringContaining('ack-2')]);
  const got = received.flatMap((c) => decodeEntries(c.entries).map((e) => ({ tag: c.tag, record: e.record, time: e.time })));
  expect(got.map(({ tag, record }) => ({ tag, record }))).toEqual(expected);
  expect(received.reduce((n, c) => n + c.count, 0)).toBe(51);
  expect(received.length).toBeLessThan(20); // runs were joined
  expect(got[0].time).toEqual(t);
  expect(got[31].time).toEqual(new EventTime(1700000002, 0));
  expect(got[45].time).toEqual(new EventTime(1700000003, 500000000));
  s.end();
});

test('a refused event in the middle of a run: the events before it are consumed and acked, then the connection closes with its code', async () => {
  const { port, received, errors } = await start();
  const s = await rawConnect(port);
  const replies = readReply(s, 1);
  const badTime = Buffer.concat([Buffer.from([0x93]), pack('app.a'), Buffer.from([0xff]), pack({ i: 3 })]); // time -1
  s.write(
    Buffer.concat([
      encodeMessage('app.a', t, { i: 0 }),
      encodeMessage('app.a', t, { i: 1 }, { chunk: 'before' }),
      encodeMessage('app.a', t, { i: 2 }),
      badTime,
      encodeMessage('app.a', t, { i: 4 }, { chunk: 'after' }),
    ]),
  );
  const [ack] = await replies;
  await new Promise((r) => s.once('close', r));
  expect(ack.toString('latin1')).toContain('before');
  expect(received.flatMap((c) => decodeEntries(c.entries).map((e) => e.record.i))).toEqual([0, 1, 2]);
  expect(received.map((c) => c.count)).toEqual([1, 1, 1]);
  expect(errors.map((e) => (e as TributaryError).code)).toEqual(['TRB_FWD_BAD_TIME']);
});

test('the server-wide pending budget pauses every connection that adds to it, and all resume once it frees', async () => {
  const held: Array<() => void> = [];
  let releasing = false;
  let peakPending = 0;
  const budget = 64 * 1024;
  const { server, port, received } = await start({
    maxPendingBytes: budget,
    maxInFlight: 64,
    consume: async (chunks) => {
      peakPending = Math.max(peakPending, server.pendingBytes);
      if (!releasing) await new Promise<void>((r) => held.push(r));
      received.push(...chunks);
    },
  });
  const entries = Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeEntry(t, { i, pad: 'x'.repeat(400) }))); // ~9 KB
  const conns = await Promise.all(
    Array.from({ length: 6 }, () => ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 20_000 })),
  );
  const sends = conns.flatMap((c, ci) =>
    Array.from({ length: 30 }, (_, k) => c.send(encodePackedForward('b', entries, { chunk: `c${ci}-${k}` }), `c${ci}-${k}`)),
  );
  // Let the senders run into the budget: nothing is settled while it is held.
  for (let i = 0; i < 100 && held.length < 6; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  const heldBytes = server.pendingBytes;
  // Each connection may add one read (at most 64 KiB) after the budget is spent; no more.
  expect(heldBytes).toBeGreaterThanOrEqual(budget);
  expect(heldBytes).toBeLessThanOrEqual(budget + 6 * 64 * 1024);
  expect(received).toHaveLength(0);
  releasing = true;
  for (const r of held.splice(0)) r();
  await Promise.all(sends);
  expect(received).toHaveLength(180);
  expect(server.pendingBytes).toBe(0);
  expect(peakPending).toBeLessThanOrEqual(budget + 6 * 64 * 1024);
  await Promise.all(conns.map((c) => c.end()));
});

test('JSON clients get JSON acks', async () => {
  const { port, received } = await start();
  const s = await rawConnect(port);
  const reply = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
  s.write('["app.json", 1700000001, {"k": "v"}, {"chunk": "j1"}]');
  expect(await reply).toBe('{"ack":"j1"}'); // the bytes Fluentd's in_forward answers a JSON client with
  expect(received[0]).toMatchObject({ tag: 'app.json', count: 1 });
  s.destroy();
});

test('a JSON request whose record msgpack cannot hold is refused as TRB_FWD_JSON once the requests before it are acked', async () => {
  const { port, received, errors } = await start();
  const s = await rawConnect(port);
  let reply = '';
  s.on('data', (d) => {
    reply += d.toString();
  });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write(
    '["app.json", 1700000001, {"k": "v"}, {"chunk": "j1"}]\n["app.json", 1700000002, {"m": {"constructor": 1, "toJSON": 2}}, {"chunk": "j2"}]',
  );
  await closed;
  expect(reply).toBe('{"ack":"j1"}');
  expect(received.map((c) => c.chunkId)).toEqual(['j1']);
  expect(errors.map((e) => (e as TributaryError).code)).toEqual(['TRB_FWD_JSON']);
  expect(errors[0].message).toMatch(
    /^Invalid JSON request: the record \(3rd element\) cannot be encoded: the map at \$\.m has a "constructor" key/,
  );
});

test('UDP heartbeat: the captured 0x00 datagram is answered with 0x00', async () => {
  const { port } = await start();
  const udp = createSocket('udp4');
  const answer = new Promise<Buffer>((r) => udp.once('message', r));
  udp.send(readFileSync(join(__dirname, '..', 'fixtures', 'fluentd-heartbeat-udp.bin')), port, '127.0.0.1');
  expect((await answer).equals(readFileSync(join(__dirname, '..', 'fixtures', 'fluentd-heartbeat-udp.reply.bin')))).toBe(true);
  udp.close();
});

test('transport heartbeats (connect, close, no data) are not errors', async () => {
  const { port, errors, received } = await start();
  for (let i = 0; i < 5; i++) (await rawConnect(port)).end();
  await new Promise((r) => setTimeout(r, 50));
  expect(errors).toHaveLength(0);
  expect(received).toHaveLength(0);
});

test('a connection reset with a batch in flight is reported once with TRB_FWD_CONNECTION; the batch is still consumed', async () => {
  let release: (() => void) | null = null;
  const { port, errors, received } = await start({
    consume: (chunks) =>
      new Promise<void>((r) => {
        release = () => {
          received.push(...chunks);
          r();
        };
      }),
  });
  const socket = await rawConnect(port);
  socket.write(encodeMessage('a', t, { x: 1 }, { chunk: 'z' }));
  const deadline = Date.now() + 5000;
  while (release === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  socket.resetAndDestroy();
  while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  (release as (() => void) | null)?.();
  await new Promise((r) => setTimeout(r, 50));
  expect(errors.map((e) => (e as TributaryError).code)).toEqual(['TRB_FWD_CONNECTION']);
  expect(received.map((c) => c.count)).toEqual([1]);
});

test('close() waits for in-flight consumes to be acked', async () => {
  let release: () => void = () => {};
  const { server, port } = await start({
    consume: () =>
      new Promise<void>((r) => {
        release = r;
      }),
  });
  const conn = await ForwardConnection.connect({ host: '127.0.0.1', port });
  const acked = conn.send(encodeMessage('a', t, { x: 1 }, { chunk: 'z' }), 'z');
  await new Promise((r) => setTimeout(r, 50));
  const closing = server.close(5000);
  setTimeout(() => release(), 100);
  await expect(acked).resolves.toBeUndefined();
  await closing;
});

test('salt sent by our client hashes as raw bytes', () => {
  const helo = { nonce: Buffer.alloc(16, 1), auth: Buffer.alloc(0), keepalive: true };
  const ping = encodePing(helo, { hostname: 'h', sharedKey: 'k' }, Buffer.from([0xff, 0xfe, 0x00]));
  expect(ping.includes(Buffer.from([0xa3, 0xff, 0xfe, 0x00]))).toBe(true);
});

test("fluent-logger's acked messages, many per read and over several reads settling out of order, are acked once each, in order", async () => {
  // The first batch resolves last: its acks and every later batch's leave together, in arrival order.
  const gates: Array<() => void> = [];
  const { port, received } = await start({
    consumeReleasesBuffers: true,
    consume: (chunks) =>
      new Promise<void>((resolve) => {
        received.push(...chunks);
        gates.push(resolve);
      }),
  });
  const socket = await rawConnect(port);
  const writes: Buffer[] = [];
  const acks = readReply(socket, 300);
  socket.on('data', (d) => writes.push(d));
  const id = (i: number) => `fl-${i.toString().padStart(4, '0')}`;
  for (let r = 0; r < 3; r++) {
    socket.write(
      Buffer.concat(Array.from({ length: 100 }, (_, i) => encodeMessage('app.fl', t, { i: r * 100 + i }, { chunk: id(r * 100 + i) }))),
    );
    await new Promise((res) => setTimeout(res, 50));
  }
  while (received.length < 300) await new Promise((res) => setTimeout(res, 10));
  for (const open of gates.slice(1)) open();
  await new Promise((res) => setTimeout(res, 50));
  expect(writes).toEqual([]); // nothing before the first batch's acks
  gates[0]();
  const frames = await acks;
  expect(frames.map((f) => f.toString('latin1'))).toEqual(Array.from({ length: 300 }, (_, i) => `\x81\xa3ack\xa7${id(i)}`));
  expect(received.map((c) => c.chunkId)).toEqual(Array.from({ length: 300 }, (_, i) => id(i)));
  expect(decodeEntries(Buffer.concat(received.map((c) => c.entries))).map((e) => e.record.i)).toEqual(
    Array.from({ length: 300 }, (_, i) => i),
  );
  socket.destroy();
});
