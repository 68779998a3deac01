/**
 * Connections are bounded in time and in what they may send before
 * authenticating (issue 10 items 4, 6, 7).
 */
import { type Socket, connect } from 'node:net';
import { encodeEntry, encodePackedForward } from './encoder';
import { ForwardServer, type ForwardServerOptions, MAX_UNAUTHENTICATED_BYTES } from './server';

const servers: ForwardServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

async function start(opts: Partial<ForwardServerOptions>) {
  const errors: Error[] = [];
  const server = new ForwardServer({ port: 0, udpHeartbeat: false, consume: async () => {}, onError: (e) => errors.push(e), ...opts });
  const { port } = await server.listen();
  servers.push(server);
  return { server, port, errors };
}

/** Opens a connection, optionally writes `bytes`, resolves with how long until the server closed it (bounded). */
function closedAfter(port: number, bytes?: Buffer, boundMs = 5000): Promise<number> {
  return new Promise((resolve) => {
    const began = Date.now();
    const s: Socket = connect(port, '127.0.0.1', () => {
      if (bytes) s.write(bytes);
    });
    s.on('error', () => {});
    s.resume(); // read (and drop) HELO and acks, so the server's FIN is seen
    s.on('close', () => resolve(Date.now() - began));
    setTimeout(() => s.destroy(), boundMs).unref();
  });
}

const security = { selfHostname: 'srv', sharedKey: 'k' };

test('an idle connection is closed after the idle timeout; one waiting on a slow downstream is not', async () => {
  let release: () => void = () => {};
  const slow = new Promise<void>((r) => {
    release = r;
  });
  const { port, errors } = await start({ idleTimeoutMs: 200, consume: () => slow });
  const idle = closedAfter(port);
  const busyMs = closedAfter(port, encodePackedForward('t', encodeEntry(1700000000, { a: 1 }), { chunk: 'c1' }), 2000);
  const idleMs = await idle;
  expect(idleMs).toBeGreaterThanOrEqual(150);
  expect(idleMs).toBeLessThan(1500);
  await new Promise((r) => setTimeout(r, 600));
  release();
  // The busy connection got its ack and was idle from then on: closed about 200 ms later, not while waiting.
  expect(await busyMs).toBeGreaterThan(700);
  expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['TRB_FWD_TIMEOUT', 'TRB_FWD_TIMEOUT']);
});

test('30 unauthenticated connections: silent ones close at the handshake deadline, oversized PINGs at once', async () => {
  const { port, errors, server } = await start({ security, handshakeTimeoutMs: 300 });
  const silentMs = await Promise.all(Array.from({ length: 15 }, () => closedAfter(port)));
  // An 8 MiB "hostname" PING prefix: refused after 64 KiB, never buffered whole, never logged whole.
  const huge = Buffer.concat([
    Buffer.from([0x96, 0xa4]),
    Buffer.from('PING'),
    Buffer.from([0xdb, 0x00, 0x80, 0x00, 0x00]),
    Buffer.alloc(1024 * 1024, 0x41),
  ]);
  const flooding = Array.from({ length: 15 }, () => closedAfter(port, huge));
  const floodMs = await Promise.all(flooding);
  for (const ms of silentMs) expect(ms).toBeLessThan(2500);
  for (const ms of floodMs) expect(ms).toBeLessThan(2500);
  const codes = errors.map((e) => (e as { code?: string }).code);
  expect(codes.filter((c) => c === 'TRB_FWD_TIMEOUT').length).toBe(15);
  expect(codes.filter((c) => c === 'TRB_FWD_CONNECTION_BUFFER').length).toBe(15);
  for (const e of errors) expect(e.message.length).toBeLessThan(400);
  expect(MAX_UNAUTHENTICATED_BYTES).toBeLessThan(huge.length);
  expect(server.connectionCount).toBe(0);
});
