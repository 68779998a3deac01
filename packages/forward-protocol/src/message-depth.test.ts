/**
 * The depth rule on the Message-mode fast path: the framer counts the maps
 * and arrays of each frame, and a plain message whose count cannot break the
 * rule skips the walk over its record; the rest are walked as before. Both
 * sides of the bound are checked here, whole and split byte by byte (the
 * count carries across reads).
 */
import { type Socket, connect } from 'node:net';
import { encodeMessage } from './encoder';
import { ForwardServer } from './server';

/** `{a: {a: … {}}}`, `depth` maps deep (the record itself counts). */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

/** A record of `n` sibling maps: n + 1 maps, 2 deep. */
function wide(n: number): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) r[`k${i}`] = { v: i };
  return r;
}

async function deliver(frame: Buffer, byteByByte: boolean): Promise<{ events: number; errors: string[] }> {
  let events = 0;
  const errors: string[] = [];
  const server = new ForwardServer({
    port: 0,
    udpHeartbeat: false,
    consume: async (chunks) => {
      for (const c of chunks) events += c.count;
    },
    onError: (err) => errors.push((err as { code?: string }).code ?? err.message),
  });
  const { port } = await server.listen();
  const socket: Socket = connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('error', () => {}); // the server closes a refused connection
    if (byteByByte) {
      for (let i = 0; i < frame.length && !socket.destroyed; i++) {
        socket.write(frame.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
    } else {
      socket.write(frame);
    }
    const until = Date.now() + 5000;
    while (events === 0 && errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  } finally {
    socket.destroy();
    await server.close(100);
  }
  return { events, errors };
}

const cases: Array<[string, Record<string, unknown>, boolean, { events: number; errors: string[] }]> = [
  ['64 deep, whole', nested(64), false, { events: 1, errors: [] }],
  ['64 deep, byte by byte', nested(64), true, { events: 1, errors: [] }],
  ['65 deep, whole', nested(65), false, { events: 0, errors: ['TRB_FWD_TOO_DEEP'] }],
  ['65 deep, byte by byte', nested(65), true, { events: 0, errors: ['TRB_FWD_TOO_DEEP'] }],
  ['100 sibling maps (over the count, 2 deep), whole', wide(100), false, { events: 1, errors: [] }],
  ['100 sibling maps, byte by byte', wide(100), true, { events: 1, errors: [] }],
];

test.each(cases)('a plain message nested %s', async (_name, record, byteByByte, expected) => {
  expect(await deliver(encodeMessage('t', 1700000000, record), byteByByte)).toEqual(expected);
});
