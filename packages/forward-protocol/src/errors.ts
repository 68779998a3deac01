/**
 * Typed, coded errors shared by every Tributary package.
 *
 * `code` is stable and greppable (`TRB_FWD_DECODE`), `retriable` tells the
 * caller whether sending the same bytes again can succeed, and the message is
 * a complete sentence saying what was wrong and where.
 */
export class TributaryError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TributaryError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** Error codes raised by the Forward Protocol library. */
export const ProtocolErrorCode = {
  /** The bytes are not valid msgpack (e.g. the never-used byte 0xc1). */
  Malformed: 'TRB_FWD_MALFORMED',
  /** Valid msgpack, but not a Forward Protocol request of any mode. */
  Shape: 'TRB_FWD_SHAPE',
  /** A single request is larger than the configured frame limit. */
  FrameTooLarge: 'TRB_FWD_FRAME_TOO_LARGE',
  /** Decompressed entries exceed the configured limit. */
  DecompressTooLarge: 'TRB_FWD_DECOMPRESS_TOO_LARGE',
  /** The compressed payload could not be inflated, or uses an unsupported codec. */
  Compression: 'TRB_FWD_COMPRESSION',
  /** Shared-key or user authentication failed. */
  Auth: 'TRB_FWD_AUTH',
  /** JSON request that is not valid JSON, or JSON while authentication is required. */
  Json: 'TRB_FWD_JSON',
  /** No acknowledgement within the ack timeout, or a wrong one. */
  AckTimeout: 'TRB_FWD_ACK_TIMEOUT',
  /** The connection closed or failed while requests were in flight. */
  Connection: 'TRB_FWD_CONNECTION',
} as const;

export class ProtocolError extends TributaryError {
  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
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
