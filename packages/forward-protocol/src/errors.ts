/**
 * The Forward Protocol library's errors. `TributaryError` (code, retriable,
 * complete-sentence message) lives in @tributary/core; it is re-exported here
 * so the protocol's callers can catch it without a second import.
 */
// Deep imports, not the package index: this file is loaded by the aggregator's encoder threads
// (through the entry readers), and the index brings ajv, yaml, pino and prom-client (~17 MB per thread).
import { Codes, type ErrorCode } from '@tributary/core/dist/codes';
import { TributaryError } from '@tributary/core/dist/errors';

export { TributaryError };

/** Error codes raised by the Forward Protocol library. */
export const ProtocolErrorCode = {
  /** The bytes are not valid msgpack (e.g. the never-used byte 0xc1). */
  Malformed: Codes.TRB_FWD_MALFORMED,
  /** Valid msgpack, but not a Forward Protocol request of any mode. */
  Shape: Codes.TRB_FWD_SHAPE,
  /** A single request is larger than the configured frame limit. */
  FrameTooLarge: Codes.TRB_FWD_FRAME_TOO_LARGE,
  /** Decompressed entries exceed the configured limit. */
  DecompressTooLarge: Codes.TRB_FWD_DECOMPRESS_TOO_LARGE,
  /** The compressed payload could not be inflated, or uses an unsupported codec. */
  Compression: Codes.TRB_FWD_COMPRESSION,
  /** Shared-key or user authentication failed. */
  Auth: Codes.TRB_FWD_AUTH,
  /** JSON request that is not valid JSON, or JSON while authentication is required. */
  Json: Codes.TRB_FWD_JSON,
  /** No acknowledgement within the ack timeout, or a wrong one. */
  AckTimeout: Codes.TRB_FWD_ACK_TIMEOUT,
  /** Refused at the door: the tag is empty, too long, not UTF-8 or holds a control character. */
  BadTag: Codes.TRB_FWD_BAD_TAG,
  /** Refused at the door: the chunk id is longer than the limit. */
  BadChunkId: Codes.TRB_FWD_BAD_CHUNK_ID,
  /** Refused at the door: an event time outside [0, 2^32) seconds, not finite, or nanoseconds ≥ 1e9. */
  BadTime: Codes.TRB_FWD_BAD_TIME,
  /** Refused at the door: a record nests containers deeper than the limit. */
  TooDeep: Codes.TRB_FWD_TOO_DEEP,
  /** Refused at the door: one event is larger than the limit (the forwarder's chunk limit). */
  EventTooLarge: Codes.TRB_FWD_EVENT_TOO_LARGE,
  /** The connection sent nothing for the idle timeout, or did not finish the handshake in time. */
  Timeout: Codes.TRB_FWD_TIMEOUT,
  /** The connection limit was reached; the new connection was closed. */
  TooManyConnections: Codes.TRB_FWD_TOO_MANY_CONNECTIONS,
  /** A client's bytes held more than the per-connection limit before a frame completed. */
  ConnectionBuffer: Codes.TRB_FWD_CONNECTION_BUFFER,
  /** The connection closed or failed while requests were in flight. */
  Connection: Codes.TRB_FWD_CONNECTION,
} as const;

const protocolCodes: ReadonlySet<string> = new Set(Object.values(ProtocolErrorCode));

/** True for the codes the Forward Protocol library raises (a connection or request problem, not a chunk's). */
export function isProtocolErrorCode(code: string | undefined): boolean {
  return code !== undefined && protocolCodes.has(code);
}

export class ProtocolError extends TributaryError {
  constructor(code: ErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}

/** Raised by the scanner: `offset` is where in the input the problem was found. */
export function malformed(what: string, offset: number): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Malformed, `Malformed msgpack: ${what} at byte offset ${offset}.`);
}

export function shapeError(what: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.Shape, `Not a Forward Protocol request: ${what}.`);
}
