/**
 * Forward Protocol server: TCP or TLS, optional shared-key handshake, UDP
 * heartbeat, and the one hand-off `consume(chunks)`.
 *
 * Contract:
 * - Each socket read is framed and parsed into chunks and handed to `consume`.
 *   Up to `maxInFlight` such batches per connection may be pending (so a
 *   sender's window is not serialised behind one fsync); at the limit the
 *   socket is paused, so a slow downstream stops reads and TCP pushes back on
 *   the sender. Memory per connection is bounded by `maxInFlight` reads plus
 *   one incomplete frame (`maxFrameBytes`); across connections, once the
 *   pending batches hold `maxPendingBytes` (counted as the reads they keep
 *   alive), every connection that adds one is paused until the total falls
 *   below it again. Pending data stays within that budget plus about one
 *   read per connection (a resumed connection's next read lands before it
 *   can see the budget spent again).
 * - `{ack}` is written for a chunk only after `consume` resolved for it, and
 *   acks leave in the order the chunks arrived. When `consume` rejects, no ack
 *   is written for that batch or any later one and the connection is closed,
 *   so the sender resends the same chunk ids elsewhere.
 * - Bad bytes close only the offending connection, after the chunks that
 *   came before them in the same read were consumed and acked.
 */
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { type TlsOptions, createServer as createTlsServer } from 'node:tls';
import { ackLength, encodeJsonAck, writeAck } from './ack';
import { type AdmissionLimits, DEFAULT_ADMISSION, admitChunk, asAdmissionError, clip } from './admission';
import { BufferPool } from './buffer-pool';
import { MessageCoalescer } from './coalescer';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder } from './decoder';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { type Helo, INVALID_PING_PONG, type ServerSecurity, createHelo, encodeHelo, encodePong, parsePing, verifyPing } from './handshake';
import { parseJsonRequest } from './json-request';
import { DEFAULT_MAX_DECOMPRESSED_BYTES, type ForwardChunk } from './request';

export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A PING is a few hundred bytes; anything past this before authentication is refused. */
export const MAX_UNAUTHENTICATED_BYTES = 64 * 1024;
/** See `ForwardServerOptions.maxPendingBytes`; the partial-frame budget has the same limit. */
const DEFAULT_MAX_PENDING_BYTES = 256 * 1024 * 1024;
/** Most bytes of free buffers a server keeps for reuse (`consumeReleasesBuffers`). */
const MAX_POOLED_BYTES = 32 * 1024 * 1024;

/** The process's open-file soft limit (Linux /proc/self/limits), or null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** See `ForwardServerOptions.maxConnections`. */
export function defaultMaxConnections(limit: number | null = openFileLimit()): number {
  if (limit === null) return 0;
  return Math.max(1, limit - Math.max(64, Math.floor(limit / 8)));
}

export interface SourceInfo {
  remoteAddress: string;
  remotePort: number;
}

export interface ForwardServerOptions {
  host?: string;
  port?: number;
  tls?: TlsOptions;
  security?: ServerSecurity;
  maxFrameBytes?: number;
  maxDecompressedBytes?: number;
  /** Batches per connection handed to `consume` and not yet settled. Default 8. */
  maxInFlight?: number;
  /** Bytes held by pending batches (the reads they keep alive), all connections together, above which reading pauses. Default 256 MiB. */
  maxPendingBytes?: number;
  /** Close a connection that sent nothing for this long while nothing of its was pending. Default 120 s; 0: never. */
  idleTimeoutMs?: number;
  /** With `security`: close a connection that did not authenticate within this long. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * Most connections held at once; more are closed as they arrive (Node's
   * `server.maxConnections`). Default: the process's open-file soft limit
   * minus an eighth of it (at least 64) kept for files and outgoing sockets,
   * so descriptors never run out on connections alone. 0: unbounded.
   */
  maxConnections?: number;
  /** What a request must satisfy to be accepted (tag, chunk id, times, depth). Default `DEFAULT_ADMISSION`. */
  admission?: AdmissionLimits;
  /**
   * `consume` keeps no reference to a batch's chunks (nor their buffers) once
   * its promise resolved, so the server reuses the buffers it assembled
   * requests in across reads, after their acks are written (BufferPool).
   * Leave unset when the consumer keeps views of chunks' entries past that
   * (the forwarder's buffers copy what they keep). Default false.
   */
  consumeReleasesBuffers?: boolean;
  /**
   * Merge fluent-logger's acked messages of one tag from one read into one
   * chunk listing their ids (`ForwardChunk.ids`), for a consumer that checks
   * and remembers each id of such a chunk (the forwarder's buffer). Default false.
   */
  mergeAckedMessages?: boolean;
  /** Answer UDP heartbeats (`0x00` → `0x00`) on the same port. Default true. */
  udpHeartbeat?: boolean;
  /**
   * The hand-off. Resolves once every chunk is durably accepted downstream;
   * rejects when any is not. Owns `chunks` (and their buffers) from the call on.
   */
  consume(chunks: ForwardChunk[], source: SourceInfo): Promise<void>;
  /** A connection's error, after which that connection is closed. */
  onError?(err: Error, source: SourceInfo): void;
}

/**
 * The server-wide budget of pending bytes, shared by its connections. When
 * bytes are given back, only as many waiting connections resume (oldest
 * first) as the freed room holds at the average batch size: resuming all of
 * hundreds at once would let each add a batch before any pause took effect.
 */
class PendingBudget {
  bytes = 0;
  /** Connections paused because the budget was spent, in the order they stopped. */
  readonly waiting = new Set<Connection>();
  /**
   * Partial-frame budget only: the one connection that keeps reading while
   * the budget is spent, so some frame always completes (otherwise every
   * holder could be paused mid-frame, waiting on the others, for good).
   */
  exempt: Connection | null = null;
  private averageBatch = 64 * 1024;

  constructor(readonly max: number) {}

  get spent(): boolean {
    return this.bytes >= this.max;
  }

  take(n: number): void {
    this.bytes += n;
    this.averageBatch += (n - this.averageBatch) / 16;
  }

  give(n: number): void {
    if (n === 0) return;
    this.bytes -= n;
    if (this.spent || this.waiting.size === 0) return;
    // Nothing pending: everyone may go (an idle resumed connection must not leave the rest waiting).
    let room =
      this.bytes === 0 ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor((this.max - this.bytes) / Math.max(1, this.averageBatch)));
    for (const c of this.waiting) {
      if (room-- <= 0) break;
      this.waiting.delete(c);
      c.resumeIfAllowed();
    }
  }
}

export class ForwardServer {
  private readonly server: Server;
  private readonly budget: PendingBudget;
  /** Bytes of frames not complete yet, all connections together (the same limit, counted apart). */
  private readonly partial: PendingBudget;
  private udp: UdpSocket | null = null;
  private readonly connections = new Set<Connection>();
  private draining = false;
  /** With `consumeReleasesBuffers`: the buffers requests spanning reads are assembled in, reused across connections. */
  private readonly pool: BufferPool | null;

  constructor(readonly options: ForwardServerOptions) {
    const maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.budget = new PendingBudget(maxPendingBytes);
    this.partial = new PendingBudget(maxPendingBytes);
    this.pool = options.consumeReleasesBuffers ? new BufferPool(MAX_POOLED_BYTES) : null;
    const onSocket = (socket: Socket) => this.accept(socket);
    this.server = options.tls ? createTlsServer(options.tls, onSocket) : createServer(onSocket);
    const max = options.maxConnections ?? defaultMaxConnections();
    if (max > 0) this.server.maxConnections = max;
    this.server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
      const source = { remoteAddress: data?.remoteAddress ?? '', remotePort: data?.remotePort ?? 0 };
      options.onError?.(
        new ProtocolError(ProtocolErrorCode.TooManyConnections, `The connection limit (${max}) was reached; a new connection was closed.`),
        source,
      );
    });
    // Accept errors (EMFILE, ENFILE when descriptors run out) are not fatal: the listener keeps going
    // (libuv accepts and closes what waits), each is reported, and the next connection is tried again.
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.listening) return;
      options.onError?.(
        new ProtocolError(ProtocolErrorCode.TooManyConnections, `Accepting a connection failed (${err.code ?? err.message}).`, {
          cause: err,
        }),
        { remoteAddress: '', remotePort: 0 },
      );
    });
  }

  private listening = false;

  async listen(): Promise<AddressInfo> {
    const { host = '127.0.0.1', port = 24224 } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = true;
    const address = this.server.address() as AddressInfo;
    if (this.options.udpHeartbeat !== false) {
      const udp = createSocket(address.family === 'IPv6' ? 'udp6' : 'udp4');
      udp.on('message', (msg, rinfo) => {
        if (msg.length === 1 && msg[0] === 0) udp.send(msg, rinfo.port, rinfo.address);
      });
      udp.on('error', () => udp.close());
      await new Promise<void>((resolve) => {
        udp.once('error', () => resolve());
        udp.bind(address.port, address.address, () => resolve());
      });
      this.udp = udp;
    }
    return address;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Bytes held by batches handed to `consume` and not settled yet, all connections together. */
  get pendingBytes(): number {
    return this.budget.bytes;
  }

  /** Bytes held for frames not complete yet, all connections together. */
  get partialBytes(): number {
    return this.partial.bytes;
  }

  private accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.options, this.budget, this.partial, this.pool);
    this.connections.add(conn);
    socket.once('close', () => {
      this.connections.delete(conn);
      this.budget.waiting.delete(conn);
      this.partial.waiting.delete(conn);
      conn.releasePartial();
    });
  }

  /**
   * Graceful stop. Stops accepting and reading; each connection finishes the
   * batches it has read, writes every ack, then half-closes (FIN) and reads
   * and drops whatever the client still sends (never acked: the client
   * resends it) until the client closes too. Closing with unread bytes would
   * make the kernel send a reset, and a client that gets a reset may lose the
   * acks already on its side. Resolves once every connection closed, or at
   * `graceMs`, when the rest are destroyed.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.udp?.close();
    this.udp = null;
    const deadline = Date.now() + graceMs;
    for (const conn of this.connections) conn.stopReading();
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const conn of this.connections) conn.destroy();
    await closed;
  }
}

interface PendingBatch {
  chunks: ForwardChunk[];
  done: boolean;
  bytes: number;
  /** The pooled buffer the batch's requests were assembled in (the decoder's `handedOutBuffer`), given back once acked. */
  pooled: Buffer | null;
}

/** The msgpack acks of the batches' chunks that carry a chunk id, in order, in one buffer (null when none do). */
function encodeAcks(batches: PendingBatch[]): Buffer | null {
  let total = 0;
  for (const b of batches) {
    for (const c of b.chunks) {
      if (c.ack) total += ackLength(c.ack.length);
      else if (c.ids) total += c.ids.acks.length;
    }
  }
  if (total === 0) return null;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const b of batches) {
    for (const c of b.chunks) {
      if (c.ids) {
        out.set(c.ids.acks, pos);
        pos += c.ids.acks.length;
      }
      if (c.ack) pos = writeAck(out, pos, c.ack, 0, c.ack.length);
    }
  }
  return out;
}

/**
 * The JSON acks of the batches' chunks that carry a chunk id, in order, in one
 * buffer (null when none do). A JSON request is always its own chunk (never
 * merged by the coalescer, so never `ids`): its `chunkId` is its only id.
 */
function encodeJsonAcks(batches: PendingBatch[]): Buffer | null {
  const acks: Buffer[] = [];
  for (const b of batches) {
    for (const c of b.chunks) if (c.chunkId !== undefined) acks.push(encodeJsonAck(c.chunkId));
  }
  return acks.length ? Buffer.concat(acks) : null;
}

class Connection {
  private readonly decoder: FrameDecoder;
  private readonly source: SourceInfo;
  private readonly maxInFlight: number;
  private readonly admission: AdmissionLimits;
  private readonly coalescer: MessageCoalescer;
  private helo: Helo | null = null;
  private authenticated: boolean;
  /** Batches handed to `consume`, oldest first; acks are written from the head. */
  private readonly pending: PendingBatch[] = [];
  /** Bad input seen after earlier batches: fail once they are acked. */
  private failAfterDrain: Error | null = null;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** This connection's share of the partial-frame budget: its decoder's buffered bytes. */
  private partialHeld = 0;
  /** Bytes received before authentication (a PING is small; more is refused). */
  private unauthenticatedBytes = 0;
  private stopped = false;
  /** Stopped and every ack written: what still arrives is read and dropped, never acked. */
  private discarding = false;
  private failed = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: ForwardServerOptions,
    private readonly budget: PendingBudget,
    private readonly partial: PendingBudget,
    private readonly pool: BufferPool | null,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, pool);
    this.maxInFlight = options.maxInFlight ?? 8;
    this.admission = options.admission ?? DEFAULT_ADMISSION;
    this.coalescer = new MessageCoalescer(
      this.admission,
      options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
      options.mergeAckedMessages === true,
    );
    this.source = { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 };
    this.authenticated = !options.security;
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onData(data));
    const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (idleMs > 0) {
      socket.setTimeout(idleMs);
      socket.on('timeout', () => {
        // Paused by us (a slow downstream, a budget) is not idle: wait again.
        if (this.busy || this.budget.waiting.has(this) || this.partial.waiting.has(this)) socket.setTimeout(idleMs);
        else this.fail(new ProtocolError(ProtocolErrorCode.Timeout, `The connection sent nothing for ${idleMs} ms (idle timeout).`));
      });
    }
    // A connection that closes without sending anything is Fluentd's transport heartbeat: normal. One that fails
    // (a reset) with batches in flight loses their acks: the sender resends them, and onError reports it.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.busy && !this.failed) {
        this.fail(
          new ProtocolError(
            ProtocolErrorCode.Connection,
            `The connection failed (${err.code ?? err.message}) with ${this.pending.length} batches not acked yet; the sender resends them.`,
            { cause: err },
          ),
        );
      }
      socket.destroy();
    });
    if (options.security) {
      this.helo = createHelo(options.security.userAuth === true);
      socket.write(encodeHelo(this.helo));
      const ms = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
      this.handshakeTimer = setTimeout(() => {
        if (!this.authenticated)
          this.fail(new ProtocolError(ProtocolErrorCode.Timeout, `No valid PING within ${ms} ms (handshake timeout).`));
      }, ms);
      this.handshakeTimer.unref();
      socket.once('close', () => clearTimeout(this.handshakeTimer));
    }
  }

  get busy(): boolean {
    return this.pending.length > 0;
  }

  stopReading(): void {
    this.stopped = true;
    this.socket.pause();
    if (!this.busy) this.halfClose();
  }

  /** After the last ack: FIN, then drop what the client still sends until it closes (no reset). */
  private halfClose(): void {
    if (this.socket.destroyed) return;
    this.discarding = true;
    this.socket.end();
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * One read: frame it, turn its complete requests into chunks (handshake,
   * coalesce, admit), hand them to `consume` as one batch (acks follow once it
   * resolved), and fail the connection at the first refused request once the
   * acks owed before it are written.
   */
  private onData(data: Buffer): void {
    if (this.failed || this.failAfterDrain || this.discarding) return;
    if (!this.authenticated && this.overUnauthenticatedLimit(data.length)) return;
    let buf: Buffer;
    let ranges: number[];
    let failure: Error | null;
    try {
      ({ buf, ranges } = this.decoder.pushRanges(data));
      failure = this.decoder.error;
    } catch (err) {
      buf = data;
      ranges = [];
      failure = err as Error;
    }
    const pooled = this.decoder.handedOutBuffer;
    this.holdPartial(failure ? 0 : this.decoder.bufferedBytes);
    const chunks: ForwardChunk[] = [];
    failure = this.toChunks(buf, ranges, chunks) ?? failure;
    if (chunks.length) this.handOff(chunks, buf, pooled);
    if (failure) {
      this.socket.pause();
      if (this.busy) this.failAfterDrain = failure;
      else this.fail(failure);
    }
  }

  /** Counts bytes received before authentication; past the limit the connection is dropped at once (true). */
  private overUnauthenticatedLimit(bytes: number): boolean {
    this.unauthenticatedBytes += bytes;
    if (this.unauthenticatedBytes <= MAX_UNAUTHENTICATED_BYTES) return false;
    // Nothing is owed to a sender that never authenticated: drop it at once, unread bytes and all.
    this.fail(
      new ProtocolError(
        ProtocolErrorCode.ConnectionBuffer,
        `More than ${MAX_UNAUTHENTICATED_BYTES} bytes arrived before authentication; the connection was refused.`,
      ),
    );
    this.socket.destroy();
    return true;
  }

  /**
   * Appends the chunks of the complete frames `buf[ranges]` to `out`: the
   * handshake's frames first while not authenticated, then each JSON request
   * as its own chunk, or the MessagePack requests through the coalescer.
   * Returns the refusal that stopped the read (the chunks before it stand), or null.
   */
  private toChunks(buf: Buffer, ranges: number[], out: ForwardChunk[]): Error | null {
    let i = 0;
    try {
      for (; i < ranges.length && !this.authenticated; i += 2) this.handshake(buf.subarray(ranges[i], ranges[i + 1]));
      if (this.decoder.format === 'json') {
        for (; i < ranges.length; i += 2) {
          out.push(admitChunk(parseJsonRequest(buf.toString('utf8', ranges[i], ranges[i + 1])), this.admission));
        }
        return null;
      }
    } catch (err) {
      return asAdmissionError(err) as Error;
    }
    return this.coalescer.coalesce(buf, ranges, i, this.decoder, out);
  }

  /**
   * Hands one read's chunks to `consume` as a pending batch, counted in the
   * server-wide budget until it settles; pauses reading at the in-flight or
   * budget limit. Its acks are written once it resolved and every earlier
   * batch was acked; a rejection fails the connection with nothing more acked.
   */
  private handOff(chunks: ForwardChunk[], buf: Buffer, pooled: Buffer | null): void {
    // What the batch keeps alive: the read it was parsed from, plus any entries of its own (inflated).
    let bytes = buf.length;
    for (const c of chunks) if (c.entries.buffer !== buf.buffer) bytes += c.entries.length;
    const batch: PendingBatch = { chunks, done: false, bytes, pooled };
    this.pending.push(batch);
    this.budget.take(bytes);
    if (this.pending.length >= this.maxInFlight) this.socket.pause();
    if (this.budget.spent) {
      this.socket.pause();
      this.budget.waiting.add(this);
    }
    this.options.consume(chunks, this.source).then(
      () => {
        batch.done = true;
        this.flushAcks();
        this.budget.give(bytes);
      },
      (err: Error) => {
        this.fail(err);
        this.budget.give(bytes);
      },
    );
  }

  /**
   * Counts the bytes of this connection's incomplete frame in the server-wide
   * partial-frame budget. When the total is spent, a connection holding part
   * of a frame is paused (TCP pushes back on its sender) until others
   * complete, close or time out: stalled senders cannot grow memory, and
   * connections sending whole frames are not held up by them. One holder
   * (the first to find the budget spent) keeps reading, so a frame always
   * completes: memory stays within the budget plus one frame.
   */
  private holdPartial(bytes: number): void {
    const delta = bytes - this.partialHeld;
    this.partialHeld = bytes;
    if (bytes === 0 && this.partial.exempt === this) this.partial.exempt = null;
    if (delta > 0) this.partial.take(delta);
    else this.partial.give(-delta);
    if (bytes > 0 && this.partial.spent) {
      this.partial.exempt ??= this;
      if (this.partial.exempt !== this) {
        this.socket.pause();
        this.partial.waiting.add(this);
      }
    }
    if (this.partial.exempt === null && this.partial.spent) {
      // The exempt reader finished or left while the budget is still spent: the oldest waiting one reads on.
      const next = this.partial.waiting.values().next().value as Connection | undefined;
      if (next) {
        this.partial.waiting.delete(next);
        this.partial.exempt = next;
        next.resumeIfAllowed();
      }
    }
  }

  /** Gives this connection's partial-frame bytes back (it closed). */
  releasePartial(): void {
    this.holdPartial(0);
  }

  /** Writes acks for the settled batches at the head, in arrival order. */
  private flushAcks(): void {
    if (this.failed || this.socket.destroyed) return;
    // Every ack that is due goes out in one write, encoded into one buffer.
    let due = 0;
    while (due < this.pending.length && this.pending[due].done) due++;
    const flushed = this.pending.splice(0, due);
    const acks = this.decoder.format === 'json' ? encodeJsonAcks(flushed) : encodeAcks(flushed);
    // consume resolved (it keeps no view of the chunks) and their acks are copied out: the memory is free
    for (const batch of flushed) if (batch.pooled) this.pool?.give(batch.pooled);
    if (acks) this.socket.write(acks);
    if (this.busy) {
      this.resumeIfAllowed();
      return;
    }
    if (this.failAfterDrain) this.fail(this.failAfterDrain);
    else if (this.stopped) this.halfClose();
    else this.resumeIfAllowed();
  }

  /** Reads again unless a limit (own window, the server-wide budget) or the connection's state says no. */
  resumeIfAllowed(): void {
    if (this.failed || this.stopped || this.failAfterDrain || this.socket.destroyed) return;
    if (this.pending.length >= this.maxInFlight) return;
    if (this.budget.spent) {
      this.budget.waiting.add(this);
      return;
    }
    if (this.partialHeld > 0 && this.partial.spent && this.partial.exempt !== this) {
      this.partial.waiting.add(this);
      return;
    }
    this.socket.resume();
  }

  private handshake(frame: Buffer): void {
    const security = this.options.security as ServerSecurity;
    const helo = this.helo as Helo;
    if (this.decoder.format === 'json') {
      throw new ProtocolError(ProtocolErrorCode.Json, 'JSON requests are refused while authentication is on.');
    }
    let ping: ReturnType<typeof parsePing>;
    try {
      ping = parsePing(frame);
    } catch {
      this.socket.write(INVALID_PING_PONG);
      throw new ProtocolError(ProtocolErrorCode.Auth, 'Data arrived before a valid PING; the connection was refused.');
    }
    const verdict = verifyPing(ping, helo, security, this.source.remoteAddress);
    this.socket.write(encodePong(verdict, ping, helo, security.selfHostname));
    if (!verdict.ok) {
      const host = clip(ping.hostname.toString('utf8', 0, Math.min(ping.hostname.length, 1024)));
      throw new ProtocolError(ProtocolErrorCode.Auth, `Authentication failed for ${host}: ${verdict.reason}.`);
    }
    this.authenticated = true;
    clearTimeout(this.handshakeTimer);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.options.onError?.(err, this.source);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
