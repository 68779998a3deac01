import { Codes, type ErrorCode } from './codes';

/**
 * Typed, coded errors shared by every Tributary package.
 *
 * `code` is stable and greppable (`TRB_FWD_BAD_TAG`), `retriable` tells the
 * caller whether sending the same bytes again can succeed, and the message is
 * a complete sentence saying what was wrong and where.
 */
export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TributaryError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * The error a `consume(batch)` rejection carries: retryable, send the same
 * data again later. Data that can never be accepted is not rejected but
 * dead-lettered with its reason, so a batch never blocks on it.
 */
export class RetryableError extends TributaryError {
  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(code, message, { retriable: true, cause });
    this.name = 'RetryableError';
  }
}

export class ConfigError extends TributaryError {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(Codes.TRB_CFG_INVALID, message);
    this.name = 'ConfigError';
  }
}
