/**
 * The forward input: a Forward Protocol server whose hand-off is the next
 * stage's `consume`. Acks follow from the server's contract: written only
 * after `consume` resolved.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '@tributary/core';
import { DEFAULT_ADMISSION, type ForwardChunk, ForwardServer, type ServerSecurity, clip } from '@tributary/forward-protocol';
import type { ForwarderConfig } from '../config';
import { consumeInPieces } from './pieces';

export type ForwardInputConfig = ForwarderConfig['forward'];

export function toServerSecurity(s: NonNullable<ForwardInputConfig['security']>): ServerSecurity {
  return {
    selfHostname: s.self_hostname,
    sharedKey: s.shared_key,
    userAuth: s.user_auth,
    users: [...s.users],
    allowAnonymousSource: s.allow_anonymous_source,
    clients: s.clients.map((c) => ({
      host: c.host,
      network: c.network,
      sharedKey: c.shared_key,
      users: c.users ? [...c.users] : undefined,
    })),
  };
}

export interface ForwardInputHooks {
  consume(chunks: ForwardChunk[]): Promise<void>;
  /** Leaves out chunks whose id was acked before (the forwarder's memory of acked chunk ids); they are acked again. */
  skipAcked?(chunks: ForwardChunk[]): Promise<ForwardChunk[]>;
  onAccepted(chunks: ForwardChunk[]): void;
  onRefused(code: string): void;
  /**
   * The forwarder's buffer chunk limit: one event larger than it is refused,
   * and a batch is handed to `consume` in pieces of at most this many bytes
   * per tag, so no chunk the buffer seals outgrows what aggregators accept.
   * Unset at the aggregator (its log takes a batch whole).
   */
  chunkLimitBytes?: number;
}

/** One log line per error code per interval: thousands of hostile connections must not become thousands of lines. */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  /** null: do not log (counted); otherwise log, with how many were not logged since the last line. */
  admit(code: string, now = Date.now()): number | null {
    const seen = this.last.get(code);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return null;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.set(code, { at: now, suppressed: 0 });
    return suppressed;
  }
}

export function createForwardInput(config: ForwardInputConfig, hooks: ForwardInputHooks, logger: Logger): ForwardServer {
  const logLimiter = new LogLimiter();
  return new ForwardServer({
    host: config.bind,
    port: config.port,
    maxFrameBytes: config.max_frame_bytes,
    maxDecompressedBytes: config.max_decompressed_bytes,
    udpHeartbeat: config.udp_heartbeat,
    maxInFlight: config.max_pending_batches,
    maxPendingBytes: config.max_pending_bytes,
    idleTimeoutMs: config.idle_timeout_ms,
    maxConnections: config.max_connections ?? undefined,
    handshakeTimeoutMs: config.handshake_timeout_ms,
    admission: hooks.chunkLimitBytes === undefined ? DEFAULT_ADMISSION : { ...DEFAULT_ADMISSION, maxEventBytes: hooks.chunkLimitBytes },
    security: config.security ? toServerSecurity(config.security) : undefined,
    tls: config.tls
      ? {
          cert: readFileSync(config.tls.cert_path),
          key: readFileSync(config.tls.key_path),
          ca: config.tls.ca_path ? readFileSync(config.tls.ca_path) : undefined,
        }
      : undefined,
    consume: async (chunks) => {
      const fresh = hooks.skipAcked ? await hooks.skipAcked(chunks) : chunks;
      if (fresh.length) await consumeInPieces(hooks.consume, fresh, hooks.chunkLimitBytes);
      hooks.onAccepted(fresh);
    },
    onError: (err, source) => {
      const code = (err as { code?: string }).code ?? 'TRB_FWD_ERROR';
      hooks.onRefused(code);
      const suppressed = logLimiter.admit(code);
      if (suppressed === null) return;
      logger.warn(
        { code, remote: `${source.remoteAddress}:${source.remotePort}`, ...(suppressed ? { suppressed } : {}) },
        `Closed a forward connection from ${source.remoteAddress || 'an unknown source'}: ${clip(err.message, 300)}${suppressed ? ` (${suppressed} more with this code since the last line, counted in the metrics)` : ''}`,
      );
    },
  });
}
