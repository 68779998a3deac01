import type { Logger } from '@tributary/core';

/**
 * On SIGTERM or SIGINT, runs `drain` once and exits 0 (1 if it failed); a
 * second signal while draining is ignored. `on`, not `once`: with `once` the
 * listener is gone before it runs, and a SIGTERM sent from a shell was seen to
 * end the process with the default action instead of draining.
 */
export function drainOnSignals(logger: Logger, drain: (signal: string) => Promise<void>): void {
  let draining = false;
  const onSignal = (signal: string) => {
    if (draining) return;
    draining = true;
    drain(signal).then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ code: 'TRB_STOP_FAILED', err: err.message }, `Shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
