/**
 * End-to-end forwarder benchmark on loopback: this process is the sender, the
 * forwarder and an acking receiver run as separate processes (so the
 * forwarder's peak RSS is its own). Prints events/s delivered to the
 * receiver, MB/s, p99 sender→forwarder ack latency, forwarder peak RSS.
 *
 *   packed:  PackedForward chunks of 1,000 ~200-byte events, ack per chunk
 *   message:     Message mode, 16 connections, an ack requested every 100 messages
 *   message-ack: Message mode, 16 connections, an ack per message (fluent-logger's way)
 *
 * The edge is the Tributary forwarder (running the filters of BENCH_FILTERS:
 * the cost of filtering shows as the drop in delivered events/s), or any other
 * Forward agent `Edge` starts (Fluent Bit in the side-by-side bench).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  ACK_PREFIX,
  EventTime,
  ForwardConnection,
  encodeEntry,
  encodeMessage,
  gzippedPackedForwardParts,
  packedForwardParts,
} from '@tributary/forward-protocol';
import { stringify } from 'yaml';
import { freePort, peakRssMb, startCpuMeter, stopProcess, track, waitHealthy } from './loopback';
import { sampleRecord } from './protocol';
import { spawnRole, stopRole } from './role-process';
import { type BenchResult, percentile } from './stats';

/** The bench's acking receiver (receiver.ts), as startReceiver hands it over once it listens. */
export interface Receiver {
  child: ChildProcess;
  port: number;
  /** Events it acked so far (it reports every 20 ms); throws `lost`'s error once it has exited. */
  events: () => number;
  /**
   * Rejects, naming the receiver, when it exits: a bench races what it awaits
   * against this, so a receiver that dies mid-bench fails the bench at once.
   * It rejects unobserved when the caller stops the receiver.
   */
  lost: Promise<never>;
}

/**
 * Starts the acking receiver child; resolves once it listens, or rejects when
 * it fails or exits first. It exits when this process does (IPC disconnect);
 * the caller stops it otherwise.
 */
export async function startReceiver(): Promise<Receiver> {
  const child = track(fork(join(__dirname, 'receiver.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  let acked = 0;
  child.on('message', (m: { events?: number }) => {
    if (m.events !== undefined) acked = m.events;
  });
  // start-up listeners, removed once it listens (or failed); its exit after that is `lost`'s
  const port = await new Promise<number>((resolve, reject) => {
    const settle = (done: () => void) => {
      child.off('message', onListening);
      child.off('error', onError);
      child.off('exit', onExit);
      done();
    };
    const onListening = (m: { port?: number }) => {
      if (m.port) settle(() => resolve(m.port as number));
    };
    const onError = (err: Error) => settle(() => reject(err));
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(() => reject(new Error(`The bench receiver exited (${code ?? signal}) before it listened.`)));
    child.on('message', onListening);
    child.on('error', onError);
    child.on('exit', onExit);
  });
  const died = () =>
    new Error(
      `The bench receiver exited (${child.exitCode ?? child.signalCode}) mid-bench, after it had acked ${acked.toLocaleString('en-US')} events: deliveries can no longer be counted.`,
    );
  const lost = new Promise<never>((_, reject) => child.once('exit', () => reject(died())));
  lost.catch(() => {}); // observed only while a bench races it
  const events = () => {
    if (child.exitCode !== null || child.signalCode !== null) throw died();
    return acked;
  };
  return { child, port, events, lost };
}

/** Filter sets of the bench: none; a grep that keeps every event (alone, and plus one added field); mask (every builtin) over all values. */
export const BENCH_FILTERS: Record<string, unknown[]> = {
  none: [],
  grep: [{ type: 'grep', regexp: [{ key: 'level', pattern: '^(info|warn|error)$' }] }],
  'grep-record': [
    { type: 'grep', regexp: [{ key: 'level', pattern: '^(info|warn|error)$' }] },
    { type: 'record', set: { env: 'production' } },
  ],
  mask: [{ type: 'mask' }],
};

/** The agent under test between the sender and the receiver: its name in the results and how to start it. */
export interface Edge {
  name: string;
  start(dir: string, receiverPort: number): Promise<{ child: ChildProcess; port: number }>;
}

/** The Tributary forwarder on its defaults, running one of BENCH_FILTERS's sets. */
export function tributaryEdge(filters = 'none'): Edge {
  return {
    name: filters === 'none' ? 'forwarder' : `forwarder (filters ${filters})`,
    start: (dir, receiverPort) => startForwarder(dir, receiverPort, { filters: BENCH_FILTERS[filters] }),
  };
}

export const TRIBUTARY_EDGE: Edge = tributaryEdge();

/**
 * Starts the Tributary forwarder (with its deployed node flags,
 * role-process.ts): a forward input on a free port, the bench's disk buffer,
 * a forward output to the receiver on `receiverPort`, plus the filters and
 * the tail input `extra` asks for. Resolves once /healthz answers; a
 * forwarder that does not get there is stopped before the rejection.
 */
export async function startForwarder(
  dir: string,
  receiverPort: number,
  extra: { filters?: unknown[]; tail?: Record<string, unknown> } = {},
): Promise<{ child: ChildProcess; port: number }> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'forwarder.yaml');
  writeFileSync(
    config,
    stringify({
      forward: { port, udp_heartbeat: false },
      ...(extra.tail ? { tail: extra.tail } : {}),
      http: { enabled: false },
      buffer: { path: join(dir, 'buffer'), max_bytes: 512 * 1024 * 1024, chunk_limit_bytes: 1024 * 1024, flush_interval_ms: 200 },
      output: { servers: [{ host: '127.0.0.1', port: receiverPort }] },
      filters: extra.filters ?? [],
      metrics: { port: metricsPort },
      log_level: 'warn',
    }),
  );
  const child = spawnRole('forwarder', config);
  try {
    await waitHealthy(metricsPort, 'The forwarder', () => child.exitCode === null);
  } catch (err) {
    await stopRole(child);
    throw err;
  }
  return { child, port };
}

export interface Sender {
  sentEvents: number;
  sentBytes: number;
  latencies: number[];
}

/** One request of a bench load: its bytes (whole or in parts), its chunk id, what it carries. */
interface BenchRequest {
  frame: Buffer | Buffer[];
  id: string;
  events: number;
  bytes: number;
}

/**
 * Sends requests from `next` on `connections` connections for `seconds`, each
 * connection keeping `window` unacked (default 8, the forwarder's), and records
 * the ack latency of every request.
 */
async function sendLoad(
  port: number,
  seconds: number,
  connections: number,
  next: (seq: number) => BenchRequest,
  window = 8,
): Promise<Sender> {
  const out: Sender = { sentEvents: 0, sentBytes: 0, latencies: [] };
  const until = Date.now() + seconds * 1000;
  let seq = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const conn = await ForwardConnection.connect({ host: '127.0.0.1', port, ackTimeoutMs: 60_000 });
      // A count and one waiter, not Promise.race over the window: racing 800
      // unacked requests cost the sender O(window) per message.
      let inflight = 0;
      let failed: Error | undefined;
      let wake: (() => void) | undefined;
      const settled = () => {
        inflight--;
        const w = wake;
        wake = undefined;
        w?.();
      };
      const slot = () =>
        new Promise<void>((r) => {
          wake = r;
        });
      while (Date.now() < until && !failed) {
        const req = next(seq++);
        const started = process.hrtime.bigint();
        inflight++;
        conn.send(req.frame, req.id).then(
          () => {
            out.latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
            out.sentEvents += req.events;
            out.sentBytes += req.bytes;
            settled();
          },
          (err: Error) => {
            failed ??= err;
            settled();
          },
        );
        if (inflight >= window) await slot();
      }
      while (inflight > 0) await slot();
      if (failed) throw failed;
      await conn.end();
    }),
  );
  return out;
}

/**
 * PackedForward chunks of 1,000 ~200-byte events, an ack per chunk; with
 * `compress` gzip, CompressedPackedForward (the entries gzipped once at level
 * 1, as Fluentd's `compress gzip` and the edge forwarder send them; the
 * sender does not spend CPU compressing each chunk again). `bytes` counts the
 * entries uncompressed either way.
 */
export function sendPacked(port: number, seconds: number, connections: number, compress: 'none' | 'gzip' = 'none'): Promise<Sender> {
  const t = new EventTime(1700000000, 1);
  const entries = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeEntry(t, sampleRecord(i))));
  const gzipped = compress === 'gzip' ? gzipSync(entries, { level: 1 }) : null;
  return sendLoad(port, seconds, connections, (seq) => {
    const id = `b${seq}`;
    const frame = gzipped
      ? gzippedPackedForwardParts('bench.packed', gzipped, { chunk: id, size: 1000 })
      : packedForwardParts('bench.packed', entries, { chunk: id, size: 1000 });
    return { frame, id, events: 1000, bytes: entries.length };
  });
}

/** Message mode: 99 plain messages and 1 asking for an ack, as one write. */
function sendMessages(port: number, seconds: number, connections: number): Promise<Sender> {
  const t = new EventTime(1700000000, 1);
  const plain = Buffer.concat(Array.from({ length: 99 }, (_, i) => encodeMessage('bench.message', t, sampleRecord(i))));
  const bytes = (plain.length / 99) * 100;
  return sendLoad(port, seconds, connections, (seq) => {
    const id = `m${seq}`;
    return { frame: [plain, encodeMessage('bench.message', t, sampleRecord(99), { chunk: id })], id, events: 100, bytes };
  });
}

/** Characters of a chunk id in the ack-per-message load: fluent-logger's are 24 (base64 of 16 random bytes). */
const ACK_ID_CHARS = 24;
/** Most messages one write of the ack-per-message sender carries. */
const ACK_EACH_MAX_PER_WRITE = 100;

/** The id of message `seq` on connection `conn`: unique in the run, ACK_ID_CHARS ASCII characters. */
function ackEachId(conn: number, seq: number): string {
  return `a${conn.toString(36).padStart(3, '0')}${seq.toString(36).padStart(ACK_ID_CHARS - 4, '0')}`;
}

/**
 * Message mode with an ack per message: every message carries its own chunk
 * id and is acked on its own, as fluent-logger sends them. As fluent-logger
 * does, the sender does not wait for an ack before the next message, up to 800
 * unacked per connection (the events the ack-every-100 load keeps in flight),
 * and it checks every ack against the id it waits for (the server acks in
 * order). So that the sender costs less than the agent it measures, the
 * messages are encoded once with a placeholder id that each send overwrites,
 * the messages that fit the window go out in one write (at most 100), and acks
 * are read in place.
 */
async function sendMessagesAckEach(port: number, seconds: number, connections: number): Promise<Sender> {
  const t = new EventTime(1700000000, 1);
  const placeholder = 'x'.repeat(ACK_ID_CHARS);
  const templates = Array.from({ length: 1000 }, (_, i) => {
    const frame = encodeMessage('bench.message', t, sampleRecord(i), { chunk: placeholder });
    if (frame.toString('latin1', frame.length - ACK_ID_CHARS) !== placeholder)
      throw new Error('The chunk id is not the end of the message.');
    return frame;
  });
  const out: Sender = { sentEvents: 0, sentBytes: 0, latencies: [] };
  const until = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, (_, conn) => sendAckEachOn(port, conn, until, 800, templates, out)));
  return out;
}

/** One connection of `sendMessagesAckEach`: resolves once sending stopped and every message was acked. */
function sendAckEachOn(port: number, conn: number, until: number, window: number, templates: Buffer[], out: Sender): Promise<void> {
  // ack = ACK_PREFIX (fixmap(1) "ack"), then fixstr(24) id: fixed size, as every id is ACK_ID_CHARS characters
  const ackPrefix = Buffer.concat([ACK_PREFIX, Buffer.from([0xa0 | ACK_ID_CHARS])]);
  const ackBytes = ackPrefix.length + ACK_ID_CHARS;
  const sentAt = new Float64Array(window);
  let sent = 0;
  let acked = 0;
  let rest: Buffer = Buffer.alloc(0);
  return new Promise<void>((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const fail = (err: Error) => {
      clearInterval(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setInterval(() => {
      if (acked < sent && performance.now() - sentAt[acked % window] > 60_000)
        fail(new Error(`No ack for ${ackEachId(conn, acked)} within 60 s.`));
    }, 1000);
    const fill = () => {
      const n = Math.min(window - (sent - acked), ACK_EACH_MAX_PER_WRITE);
      if (n <= 0 || Date.now() >= until) return;
      let size = 0;
      for (let i = 0; i < n; i++) size += templates[(sent + i) % templates.length].length;
      const buf = Buffer.allocUnsafe(size);
      const now = performance.now();
      let pos = 0;
      for (let i = 0; i < n; i++, sent++) {
        const tpl = templates[sent % templates.length];
        tpl.copy(buf, pos);
        pos += tpl.length;
        buf.write(ackEachId(conn, sent), pos - ACK_ID_CHARS, 'latin1');
        sentAt[sent % window] = now;
      }
      socket.write(buf);
    };
    // sending stopped and every message sent is acked (on connect too: past `until` by then, none is sent and no ack comes)
    const endIfDone = () => {
      if (acked === sent && Date.now() >= until) {
        clearInterval(timer);
        socket.end();
        resolve();
      }
    };
    socket.setNoDelay(true);
    socket.on('connect', () => {
      while (sent < window && Date.now() < until) fill();
      endIfDone();
    });
    socket.on('error', fail);
    // the edge under test closed the connection with acks still owed: fail now, not at the 60 s watchdog
    socket.on('close', () => {
      if (acked < sent) fail(new Error(`Connection ${conn} closed with ${sent - acked} messages unacked.`));
    });
    socket.on('data', (data: Buffer) => {
      const buf = rest.length ? Buffer.concat([rest, data]) : data;
      let off = 0;
      const now = performance.now();
      for (; off + ackBytes <= buf.length; off += ackBytes) {
        if (acked >= sent || buf.compare(ackPrefix, 0, ackPrefix.length, off, off + ackPrefix.length) !== 0) {
          return fail(new Error(`An unexpected answer on connection ${conn}: ${buf.toString('hex', off, off + ackBytes)}.`));
        }
        const id = buf.toString('latin1', off + ackPrefix.length, off + ackBytes);
        if (id !== ackEachId(conn, acked)) {
          return fail(new Error(`Ack for ${id} where ${ackEachId(conn, acked)} was due (acks come in order).`));
        }
        out.latencies.push(now - sentAt[acked % window]);
        out.sentEvents++;
        out.sentBytes += templates[acked % templates.length].length;
        acked++;
      }
      rest = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
      fill();
      endIfDone();
    });
  });
}

/** Most time to wait, once sending stopped, for the receiver to count every event the edge acked. */
const DRAIN_LIMIT_MS = 60_000;

export type ForwarderBenchMode = 'packed' | 'message' | 'message-ack';

const SENDERS: Record<ForwarderBenchMode, (port: number, seconds: number, connections: number) => Promise<Sender>> = {
  packed: sendPacked,
  message: sendMessages,
  'message-ack': sendMessagesAckEach,
};

const MODE_NAMES: Record<ForwarderBenchMode, string> = {
  packed: 'PackedForward 1000x200B, acks',
  message: 'Message mode, ack/100',
  'message-ack': 'Message mode, ack per message',
};

export async function runForwarderBench(
  mode: ForwarderBenchMode,
  seconds: number,
  connections: number,
  edge: Edge = TRIBUTARY_EDGE,
): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'trb-bench-'));
  const receiver = await startReceiver();
  let forwarder: { child: ChildProcess; port: number };
  try {
    forwarder = await edge.start(dir, receiver.port);
  } catch (err) {
    await stopProcess(receiver.child);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  try {
    // a receiver that died while the edge started fails the bench here, saying so, not on reading its gone /proc entry
    receiver.events();
    const start = Date.now();
    const cpuUsed = startCpuMeter({ [edge.name]: forwarder.child.pid as number, receiver: receiver.child.pid as number });
    // an edge whose receiver died may stop acking: the sender would wait out its 60 s ack timeout
    const sent = await Promise.race([SENDERS[mode](forwarder.port, seconds, connections), receiver.lost]);
    // Delivered = what reached the receiver; wait (bounded) for the forwarder to drain what it acked.
    const drainUntil = Date.now() + DRAIN_LIMIT_MS;
    while (receiver.events() < sent.sentEvents && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    const elapsed = (Date.now() - start) / 1000;
    const delivered = receiver.events();
    const rss = peakRssMb(forwarder.child.pid as number);
    const cpu = cpuUsed();
    const sorted = sent.latencies.sort((a, b) => a - b);
    return {
      name: `${edge.name} e2e ${MODE_NAMES[mode]}, ${connections} conns`,
      events: delivered,
      sentEvents: sent.sentEvents,
      bytes: (delivered / Math.max(1, sent.sentEvents)) * sent.sentBytes,
      seconds: elapsed,
      p99Ms: percentile(sorted, 99),
      peakRssMb: rss,
      cpu,
    };
  } finally {
    await stopRole(forwarder.child);
    await stopProcess(receiver.child);
    rmSync(dir, { recursive: true, force: true });
  }
}
