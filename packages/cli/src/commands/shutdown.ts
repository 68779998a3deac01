import type { Logger } from '@tributary/core';

/**
 * Clean stops on SIGTERM / SIGINT for the long-running commands.
 *
 * `catchSignalsEarly` runs first thing in such a command, before its modules
 * load and its components start (about a second): a signal in that window was
 * seen to end `tributary up` with the default action (exit 143) instead of a
 * clean stop. It only records the signal; `drainOnSignals`, once the role is
 * running, takes over and drains at once if one arrived.
 */
let early: string | null = null;
const recordTerm = () => {
  early ??= 'SIGTERM';
};
const recordInt = () => {
  early ??= 'SIGINT';
};

let catching = false;

export function catchSignalsEarly(): void {
  if (catching) return;
  catching = true;
  process.on('SIGTERM', recordTerm);
  process.on('SIGINT', recordInt);
}

/**
 * On SIGTERM or SIGINT (or one caught early), runs `drain` once and exits 0
 * (1 if it failed); a second signal while draining is ignored. `on`, not
 * `once`, so a listener is always installed while the process runs.
 */
export function drainOnSignals(logger: Logger, drain: (signal: string) => Promise<void>): () => void {
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
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.off('SIGTERM', recordTerm);
  process.off('SIGINT', recordInt);
  catching = false;
  const caught = early;
  early = null;
  if (caught) onSignal(caught);
  return () => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };
}
