/**
 * Forward Protocol client connection: connect (TCP or TLS), optional shared-key
 * handshake, then requests with acknowledgements matched by chunk id.
 *
 * Contract: `send` resolves when the server acked the chunk (or, without a
 * chunk id, once the bytes are handed to the socket); it rejects with a
 * retriable TRB_FWD_ACK_TIMEOUT / TRB_FWD_CONNECTION error when no ack came,
 * and the caller resends the same bytes, with the same id, anywhere.
 * Any failure destroys the connection and rejects every request in flight.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type Socket, connect as netConnect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { FrameDecoder } from './decoder';
import { ProtocolError, ProtocolErrorCode } from './errors';
import { type ClientCredentials, type Helo, encodePing, parseHelo, parsePong, verifyPong } from './handshake';
import { readRaw } from './msgpack-scan';

export interface ForwardClientOptions {
  host: string;
  port: number;
  /** TLS options; absent for plain TCP. */
  tls?: ConnectionOptions;
  /** Shared-key credentials; required when the server sends HELO. */
  security?: ClientCredentials;
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

function connectionError(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Connection, message, { retriable: true, cause });
}

export class ForwardConnection extends EventEmitter {
  private readonly decoder = new FrameDecoder(1024 * 1024);
  private readonly pending = new Map<string, Pending>();
  private closedError: Error | null = null;
  readonly openedAt = Date.now();

  private constructor(
    private readonly socket: Socket,
    private readonly options: ForwardClientOptions,
  ) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.destroy(connectionError(`Connection to ${this.target} failed: ${err.message}.`, err)));
    socket.on('close', () => this.destroy(connectionError(`Connection to ${this.target} closed with requests in flight.`)));
    socket.resume();
  }

  get target(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Opens a connection and completes the handshake when the server asks for one. */
  static async connect(options: ForwardClientOptions): Promise<ForwardConnection> {
    const timeout = options.connectTimeoutMs ?? 5000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = options.tls
        ? tlsConnect({ ...options.tls, host: options.host, port: options.port })
        : netConnect({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(connectionError(`Connecting to ${options.host}:${options.port} timed out after ${timeout} ms.`));
      }, timeout);
      s.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(connectionError(`Connecting to ${options.host}:${options.port} failed: ${err.message}.`, err));
      });
    });
    socket.setNoDelay(true);
    if (options.security) await handshake(socket, options.security, timeout);
    return new ForwardConnection(socket, options);
  }

  /**
   * Writes one encoded request (whole, or in parts as from `packedForwardParts`).
   * With `chunkId`, resolves on the matching ack; the request must carry the
   * same id in its `chunk` option.
   */
  send(frame: Buffer | Buffer[], chunkId?: string): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (chunkId === undefined) {
      return new Promise((resolve, reject) => this.write(frame, (err) => (err ? reject(connectionError(err.message, err)) : resolve())));
    }
    return new Promise<void>((resolve, reject) => {
      const ms = this.options.ackTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        this.destroy(
          new ProtocolError(ProtocolErrorCode.AckTimeout, `No ack from ${this.target} for chunk ${chunkId} within ${ms} ms.`, {
            retriable: true,
          }),
        );
      }, ms);
      this.pending.set(chunkId, { resolve, reject, timer });
      this.write(frame);
    });
  }

  /** One request, possibly in parts, written as one vectored write. */
  private write(frame: Buffer | Buffer[], cb?: (err?: Error | null) => void): void {
    if (Buffer.isBuffer(frame)) {
      this.socket.write(frame, cb);
      return;
    }
    this.socket.cork();
    frame.forEach((part, i) => this.socket.write(part, i === frame.length - 1 ? cb : undefined));
    this.socket.uncork();
  }

  /** Ends the connection after the requests in flight were acked (or failed). */
  async end(): Promise<void> {
    while (this.pending.size > 0 && !this.closedError) await new Promise((r) => setTimeout(r, 5));
    this.socket.end();
    this.destroy(connectionError(`Connection to ${this.target} was closed by this client.`));
  }

  destroy(err: Error = connectionError(`Connection to ${this.target} was closed.`)): void {
    if (this.closedError) return;
    this.closedError = err;
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.emit('close', err);
  }

  private onData(data: Buffer): void {
    try {
      for (const frame of this.decoder.push(data)) {
        const { value } = readRaw(frame, 0, frame.length);
        const id = value instanceof Map ? value.get('ack') : undefined;
        if (!Buffer.isBuffer(id)) continue;
        const key = id.toString('utf8');
        const p = this.pending.get(key);
        if (!p) continue;
        clearTimeout(p.timer);
        this.pending.delete(key);
        p.resolve();
      }
    } catch (err) {
      this.destroy(connectionError(`Unreadable answer from ${this.target}: ${(err as Error).message}`, err));
    }
  }
}

/** Reads one frame from a socket that is not yet wrapped (handshake phase). */
function readFrame(socket: Socket, decoder: FrameDecoder, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, frame?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err) reject(err);
      else resolve(frame as Buffer);
    };
    const onData = (d: Buffer) => {
      try {
        const frames = decoder.push(d);
        if (frames.length) {
          socket.pause();
          done(null, frames[0]);
        }
      } catch (err) {
        done(err as Error);
      }
    };
    const onClose = () => done(connectionError(`The server closed the connection while waiting for ${what}.`));
    const timer = setTimeout(() => done(connectionError(`No ${what} within ${timeoutMs} ms.`)), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    socket.resume();
  });
}

async function handshake(socket: Socket, creds: ClientCredentials, timeoutMs: number): Promise<void> {
  try {
    const helo: Helo = parseHelo(await readFrame(socket, new FrameDecoder(65536), timeoutMs, 'HELO'));
    const salt = Buffer.from(randomBytes(16).toString('hex'));
    socket.write(encodePing(helo, creds, salt));
    const pong = parsePong(await readFrame(socket, new FrameDecoder(65536), timeoutMs, 'PONG'));
    verifyPong(pong, helo, salt, creds);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
