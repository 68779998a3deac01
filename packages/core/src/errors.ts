/**
 * The error a `consume(batch)` rejection carries: retryable, send the same
 * data again later. Data that can never be accepted is not rejected but
 * dead-lettered with its reason, so a batch never blocks on it.
 */
import { TributaryError } from '@tributary/forward-protocol';

export { TributaryError };

export class RetryableError extends TributaryError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { retriable: true, cause });
    this.name = 'RetryableError';
  }
}

export class ConfigError extends TributaryError {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super('TRB_CFG_INVALID', message);
    this.name = 'ConfigError';
  }
}
