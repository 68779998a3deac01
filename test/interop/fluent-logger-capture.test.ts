/**
 * What the npm `fluent-logger` (a devDependency) writes with
 * `requireAckResponse`, captured on a plain loopback TCP server that answers
 * each request as Fluentd does (`{"ack": <its chunk option>}`, encoded by the
 * library's own msgpack-lite), in Message and PackedForward mode:
 * - our request parser (FrameDecoder + parseRequest) and the forwarder's
 *   forward server (acked messages merged) turn the bytes into the events
 *   emitted, with their tag, time and fields;
 * - the ack each would send is the one the capture server sent for the
 *   request's chunk id, byte for byte;
 * - the live bytes equal the stored capture
 *   (packages/forward-protocol/fixtures/fluent-logger-*.bin, see its README)
 *   once chunk ids, random per request, are blanked in both. A change in the
 *   library's output shows here. `TRB_UPDATE_FIXTURES=1` rewrites the stored
 *   captures from the live ones instead of comparing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { FrameDecoder, decodeEntries, encodeAck, parseRequest } from '@tributary/forward-protocol';
import { startRecordingServer, waitFor } from '@tributary/test-kit';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');
// The msgpack fluent-logger encodes with (its dependency, not ours): the capture server's reading of a request.
// biome-ignore lint/suspicious/noExplicitAny: msgpack-lite ships no typings
const msgpack: any = createRequire(require.resolve('fluent-logger'))('msgpack-lite');

const FIXTURES = join(__dirname, '..', '..', 'packages', 'forward-protocol', 'fixtures');
const UPDATE = process.env.TRB_UPDATE_FIXTURES === '1';

/** What is emitted on `app.web`, in order: EventTime, nested maps and arrays, non-ASCII text, an integer time, a Buffer. */
const EMITTED = [
  { time: new fluent.EventTime(1700000001, 100000001), record: { msg: 'hello', n: 1 } },
  {
    time: new fluent.EventTime(1700000002, 2),
    record: { user: { id: 42, roles: ['admin', 'dev'], prefs: { theme: 'dark', beta: true } }, ratio: 0.5, none: null },
  },
  { time: 1700000003, record: { msg: 'héllo wörld ✓ 日本語 🚀' } },
  { time: new fluent.EventTime(1700000004, 999999999), record: { payload: Buffer.from([0, 1, 2, 0xfe, 0xff]), n: -7 } },
];

/** The events as our decoder should give them back. */
const EXPECTED = [
  { tag: 'app.web', seconds: 1700000001, nanoseconds: 100000001, record: EMITTED[0].record },
  { tag: 'app.web', seconds: 1700000002, nanoseconds: 2, record: EMITTED[1].record },
  { tag: 'app.web', seconds: 1700000003, nanoseconds: 0, record: EMITTED[2].record },
  { tag: 'app.web', seconds: 1700000004, nanoseconds: 999999999, record: EMITTED[3].record },
];

const MODES = [
  { mode: 'Message', fixture: 'fluent-logger-message-ack.bin', requests: 4 },
  { mode: 'PackedForward', fixture: 'fluent-logger-packed-ack.bin', requests: 1 },
] as const;

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

/**
 * Emits EMITTED with fluent-logger in `eventMode` to a plain TCP server that
 * keeps every byte and answers each request's chunk id; resolves with the
 * bytes of the one connection once every emit was acked and the sender closed.
 */
async function capture(eventMode: string): Promise<Buffer> {
  const connections: Buffer[][] = [];
  const closed: Array<Promise<void>> = [];
  const serverErrors: Error[] = [];
  const server = createServer((socket) => {
    const bytes: Buffer[] = [];
    connections.push(bytes);
    closed.push(new Promise((r) => socket.once('close', () => r())));
    socket.on('data', (d: Buffer) => bytes.push(Buffer.from(d)));
    const requests = msgpack.createDecodeStream();
    requests.on('error', (err: Error) => serverErrors.push(err));
    requests.on('data', (request: unknown[]) => {
      const option = request[request.length - 1] as { chunk?: string };
      socket.write(msgpack.encode({ ack: option.chunk }));
    });
    socket.pipe(requests);
  });
  const port = await listen(server);
  try {
    const sender = fluent.createFluentSender('app', {
      host: '127.0.0.1',
      port,
      eventMode,
      requireAckResponse: true,
      ackResponseTimeout: 5000,
      flushInterval: 10,
      timeout: 5,
      internalLogger: { info() {}, error() {} },
    });
    const senderErrors: Error[] = [];
    sender.on('error', (err: Error) => senderErrors.push(err));
    await Promise.all(
      EMITTED.map(
        (e) =>
          new Promise<void>((resolve, reject) => sender.emit('web', e.record, e.time, (err?: Error) => (err ? reject(err) : resolve()))),
      ),
    );
    await new Promise<void>((r) => sender.end(null, null, () => r()));
    await Promise.all(closed);
    expect(senderErrors).toEqual([]);
    expect(serverErrors).toEqual([]);
  } finally {
    await new Promise((r) => server.close(r));
  }
  expect(connections).toHaveLength(1);
  return Buffer.concat(connections[0]);
}

/** Each request's chunk id, as fluent-logger's msgpack reads the request. */
function chunkIds(bytes: Buffer): string[] {
  return new FrameDecoder().push(bytes).map((frame) => {
    const request = msgpack.decode(frame) as unknown[];
    return (request[request.length - 1] as { chunk: string }).chunk;
  });
}

/** `bytes` with each request's chunk id (random per request, 24 base64 characters) overwritten by 'A's. */
function blankChunkIds(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  for (const id of chunkIds(bytes)) {
    const at = out.indexOf(id);
    expect(at).toBeGreaterThan(0);
    out.fill('A', at, at + Buffer.byteLength(id));
  }
  return out;
}

/** Sends `bytes` on one connection to `port` and resolves with the first `length` bytes answered. */
function reply(port: number, bytes: Buffer, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let n = 0;
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= length) {
        socket.destroy();
        resolve(Buffer.concat(got));
      }
    });
  });
}

describe.each(MODES)('fluent-logger $mode with requireAckResponse', ({ mode, fixture, requests }) => {
  let live: Buffer;
  beforeAll(async () => {
    live = await capture(mode);
  });

  test('our request parser gives back the events emitted, and acks each request with its chunk id', () => {
    const frames = new FrameDecoder().push(live);
    expect(frames).toHaveLength(requests);
    const ids = chunkIds(live);
    expect(ids.every((id) => /^[A-Za-z0-9+/]{22}==$/.test(id))).toBe(true);
    const events = frames.flatMap((frame, i) => {
      const chunk = parseRequest(frame);
      expect(chunk.chunkId).toBe(ids[i]);
      expect(encodeAck(chunk.ack as Buffer).equals(msgpack.encode({ ack: ids[i] }))).toBe(true);
      return decodeEntries(chunk.entries).map((e) => ({
        tag: chunk.tag,
        seconds: e.time.seconds,
        nanoseconds: e.time.nanoseconds,
        record: e.record,
      }));
    });
    expect(events).toEqual(EXPECTED);
  });

  test("the forwarder's forward server accepts the same bytes as the same events, with the same acks in order", async () => {
    const { server, port, events, errors } = await startRecordingServer({ mergeAckedMessages: true });
    try {
      const acks = Buffer.concat(chunkIds(live).map((id) => msgpack.encode({ ack: id }) as Buffer));
      const answered = await reply(port, live, acks.length);
      expect(answered.equals(acks)).toBe(true);
      await waitFor(() => events.length >= EXPECTED.length, 5000, `${EXPECTED.length} events`);
      expect(events.map((e) => ({ tag: e.tag, seconds: e.time.seconds, nanoseconds: e.time.nanoseconds, record: e.record }))).toEqual(
        EXPECTED,
      );
      expect(errors).toEqual([]);
    } finally {
      await server.close(100);
    }
  });

  test(`the live bytes equal the stored capture ${fixture}, chunk ids blanked`, () => {
    const path = join(FIXTURES, fixture);
    if (UPDATE) writeFileSync(path, live);
    expect(existsSync(path)).toBe(true);
    const stored = readFileSync(path);
    expect(blankChunkIds(live).toString('hex')).toBe(blankChunkIds(stored).toString('hex'));
  });
});
