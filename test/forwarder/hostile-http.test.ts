/**
 * The HTTP input under hostile senders (issue 10 items 4, 6 and 8), at a
 * forwarder process: slow bodies are bounded by one budget, slow headers and
 * slow bodies are cut by deadlines, oversized record counts and events are
 * refused with their codes, and SIGTERM completes with a request still running.
 */
import { rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { type Started, exited, freePort, peakRssMb, startRole, tempDir } from '@tributary/test-kit';
import { Packr } from 'msgpackr';

const MB = 1024 * 1024;
const RSS_BOUND_MB = 256;

async function startForwarder(dir: string): Promise<{ fwd: Started; http: number }> {
  const [forward, http, metricsPort, deadPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const fwd = await startRole(
    'forwarder',
    {
      forward: { port: forward, udp_heartbeat: false },
      http: { port: http, header_timeout_ms: 2000, request_timeout_ms: 4000 },
      buffer: { type: 'memory', max_bytes: 64 * MB },
      output: { servers: [{ host: '127.0.0.1', port: deadPort }] },
      metrics: { port: metricsPort },
      shutdown_grace_ms: 1000,
      log_level: 'error',
    },
    dir,
    metricsPort,
  );
  return { fwd, http };
}

/** A raw connection that writes `head` then `body`; records what came back and when it closed. */
function rawRequest(port: number, head: string, body?: Buffer) {
  const state = { reply: '', closedAt: 0 };
  const socket: Socket = connect(port, '127.0.0.1', () => {
    socket.write(head);
    if (body) socket.write(body);
  });
  socket.on('data', (d) => {
    state.reply += d.toString('latin1');
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closedAt = Date.now();
  });
  return { socket, state };
}

async function postOk(port: number, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/good`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"i":${i}}`,
    });
    if (r.status === 200) ok++;
  }
  return ok;
}

async function stop(fwd: Started): Promise<{ code: number | null | 'hung'; ms: number }> {
  const began = Date.now();
  fwd.child.kill('SIGTERM');
  const code = await Promise.race([exited(fwd.child), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
  if (code === 'hung') fwd.child.kill('SIGKILL');
  return { code, ms: Date.now() - began };
}

test('60 slow 30 MB bodies and 30 slowloris headers: RSS bounded, deadlines cut them, good requests get 200', async () => {
  const dir = tempDir('http-slow');
  const { fwd, http } = await startForwarder(dir);
  const conns: Array<ReturnType<typeof rawRequest>> = [];
  try {
    const part = Buffer.alloc(20 * MB, 0x20); // JSON whitespace: 20 MB of a 30 MB body, then silence
    for (let i = 0; i < 30; i++) {
      conns.push(
        rawRequest(http, 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30000000\r\n\r\n', part),
      );
    }
    const chunked = Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]);
    for (let i = 0; i < 30; i++) {
      conns.push(
        rawRequest(http, 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', chunked),
      );
    }
    const loris = Array.from({ length: 30 }, () => rawRequest(http, 'POST /loris HTTP/1.1\r\nHost: x\r\n'));
    const drip = setInterval(() => {
      for (const l of loris) if (!l.socket.destroyed) l.socket.write('X');
    }, 300);
    const began = Date.now();
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(await postOk(http, 20)).toBe(20);
      // Every slow sender is answered or cut within the request deadline (4 s) plus the 1 s check interval and slack.
      while (Date.now() - began < 9000 && [...conns, ...loris].some((c) => c.state.closedAt === 0)) {
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearInterval(drip);
    }
    expect(conns.filter((c) => c.state.closedAt === 0).length).toBe(0);
    expect(loris.filter((c) => c.state.closedAt === 0).length).toBe(0);
    // A 503 written just before the server closes a socket the client is still writing 20 MB into can be
    // lost to the TCP reset that follows (the client's error is a reset, its reply empty): under CI load
    // 41–59 of 60 arrived. What must hold: none was accepted, each reply is a refusal, most were told why,
    // and all were closed.
    const replies = conns.map((c) => c.state.reply.slice(0, 12));
    console.log(
      `slow bodies: ${replies.filter((r) => r.startsWith('HTTP/1.1 503')).length} got 503, ${replies.filter((r) => r === '').length} were reset without a reply, of 60`,
    );
    expect(replies.filter((r) => r.startsWith('HTTP/1.1 2'))).toEqual([]);
    // the one or two bodies the budget admitted are cut at the request deadline: 408
    expect(replies.filter((r) => r !== '' && !r.startsWith('HTTP/1.1 503') && !r.startsWith('HTTP/1.1 408'))).toEqual([]);
    expect(replies.filter((r) => r.startsWith('HTTP/1.1 408')).length).toBeLessThanOrEqual(2);
    expect(replies.filter((r) => r.startsWith('HTTP/1.1 503')).length).toBeGreaterThanOrEqual(30);
    expect(peakRssMb(fwd.child.pid as number)).toBeLessThan(RSS_BOUND_MB);
    expect(await postOk(http, 5)).toBe(5);
  } finally {
    for (const c of conns) c.socket.destroy();
    const stopped = await stop(fwd);
    expect(stopped.code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('record counts and event sizes are bounded with their codes; SIGTERM completes with a slow request running', async () => {
  const dir = tempDir('http-limits');
  const { fwd, http } = await startForwarder(dir);
  try {
    const post = (body: string | Buffer, type: string) =>
      fetch(`http://127.0.0.1:${http}/many`, { method: 'POST', headers: { 'content-type': type }, body });
    const records = Array.from({ length: 300_000 }, () => ({}));
    const mp = await post(new Packr({ useRecords: false }).pack(records), 'application/msgpack');
    expect(mp.status).toBe(413);
    expect(await mp.json()).toMatchObject({ code: 'TRB_HTTP_TOO_MANY_RECORDS' });
    const json = await post(JSON.stringify(records), 'application/json');
    expect(json.status).toBe(413);
    const huge = await post(JSON.stringify({ pad: 'h'.repeat(1.5 * MB) }), 'application/json');
    expect(huge.status).toBe(400);
    expect(await huge.json()).toMatchObject({ code: 'TRB_FWD_EVENT_TOO_LARGE' });
    expect(peakRssMb(fwd.child.pid as number)).toBeLessThan(RSS_BOUND_MB);

    // A request that never finishes does not hold the stop past the HTTP grace (5 s).
    const slow = rawRequest(http, 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{');
    await new Promise((r) => setTimeout(r, 300));
    const stopped = await stop(fwd);
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(12_000);
    slow.socket.destroy();
  } finally {
    if (fwd.child.exitCode === null) fwd.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
