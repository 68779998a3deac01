/**
 * The forward input: a Forward Protocol server whose hand-off is the next
 * stage's `consume`. Acks follow from the server's contract: written only
 * after `consume` resolved.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Codes, LogLimiter } from '@tributary/core';
import { ForwardServer, clip } from '@tributary/forward-protocol';
import { type Consume, type Input, type InputContext, admissionFor, notListening } from '../input';
import { consumeInPieces } from '../pieces';
import { type ForwardInputConfig, toServerSecurity } from './config';

/** The forward input; it listens once started. */
export function createForwardInput(config: ForwardInputConfig, ctx: InputContext): Input {
  let server: ForwardServer | null = null;
  return {
    name: 'forward',
    get address(): AddressInfo {
      if (!server) throw notListening('forward');
      return server.address;
    },
    async start(consume) {
      server = createServer(config, ctx, consume);
      await server.listen();
    },
    async stop(graceMs) {
      await server?.close(graceMs);
    },
  };
}

function createServer(config: ForwardInputConfig, ctx: InputContext, next: Consume): ForwardServer {
  const { logger } = ctx;
  const logLimiter = new LogLimiter();
  return new ForwardServer({
    host: config.bind,
    port: config.port,
    maxFrameBytes: config.max_frame_bytes,
    maxDecompressedBytes: config.max_decompressed_bytes,
    udpHeartbeat: config.udp_heartbeat,
    consumeReleasesBuffers: ctx.consumeReleasesBuffers === true,
    // The forwarder's buffer checks and remembers every id of a merged run (skipAcked); the aggregator's log does not.
    mergeAckedMessages: ctx.skipAcked !== undefined,
    maxInFlight: config.max_pending_batches,
    maxPendingBytes: config.max_pending_bytes,
    idleTimeoutMs: config.idle_timeout_ms,
    maxConnections: config.max_connections ?? undefined,
    handshakeTimeoutMs: config.handshake_timeout_ms,
    admission: admissionFor(ctx),
    security: config.security ? toServerSecurity(config.security) : undefined,
    tls: config.tls
      ? {
          cert: readFileSync(config.tls.cert_path),
          key: readFileSync(config.tls.key_path),
          ca: config.tls.ca_path ? readFileSync(config.tls.ca_path) : undefined,
        }
      : undefined,
    consume: async (chunks) => {
      const fresh = ctx.skipAcked ? await ctx.skipAcked(chunks) : chunks;
      if (fresh.length) await consumeInPieces(next, fresh, ctx.chunkLimitBytes);
      ctx.onAccepted?.(fresh);
    },
    onError: (err, source) => {
      const code = (err as { code?: string }).code ?? Codes.TRB_FWD_ERROR;
      ctx.onRefused(code);
      const suppressed = logLimiter.admit(code);
      if (suppressed === null) return;
      logger.warn(
        { code, remote: `${source.remoteAddress}:${source.remotePort}`, ...(suppressed ? { suppressed } : {}) },
        `Closed a forward connection from ${source.remoteAddress || 'an unknown source'}: ${clip(err.message, 300)}${suppressed ? ` (${suppressed} more with this code since the last line, counted in the metrics)` : ''}`,
      );
    },
  });
}
