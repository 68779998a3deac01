/**
 * The errors every `consume(batch)` rejection carries: retryable (send the
 * same data again later) or permanent (it will never be accepted).
 */
import { TributaryError } from '@tributary/forward-protocol';

export { TributaryError };

export class RetryableError extends TributaryError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { retriable: true, cause });
    this.name = 'RetryableError';
  }
}

export class PermanentError extends TributaryError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { retriable: false, cause });
    this.name = 'PermanentError';
  }
}

export const ConfigErrorCode = 'TRB_CFG_INVALID';

export class ConfigError extends TributaryError {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(ConfigErrorCode, message);
    this.name = 'ConfigError';
  }
}
