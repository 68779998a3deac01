import { readFileSync } from 'node:fs';
import { Codes, type ErrorCode, type Logger } from '@tributary/core';

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
        logger.error({ code: Codes.TRB_STOP_FAILED, err: err.message }, `Shutdown failed: ${err.message}`);
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

/**
 * A rejection nobody handled, or an exception nobody caught, means a promise
 * or callback lost its owner: the process state is unknown. Logs a coded
 * fatal line (flushed first) and exits 1, so systemd (Restart=always) or the
 * container runtime restarts the process; restart recovery is the one path
 * that is known to be safe. The tests must never reach these handlers.
 */
export function exitOnUnhandled(logger: Logger): void {
  const die = (code: ErrorCode, what: string, err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    logger.fatal(
      { code, err: e.message, stack: e.stack },
      `${what}: ${e.message}. Exiting with status 1 so the supervisor restarts the process.`,
    );
    const exit = () => process.exit(1);
    setTimeout(exit, 1000).unref(); // the flush must not hold the exit forever
    logger.flush(exit);
  };
  process.on('unhandledRejection', (reason) => die(Codes.TRB_UNHANDLED_REJECTION, 'A promise rejection was not handled', reason));
  process.on('uncaughtException', (err) => die(Codes.TRB_UNCAUGHT_EXCEPTION, 'An exception was not caught', err));
}

/** Parent pid and process group from /proc/self/stat; null where there is no /proc (then only process.ppid is used). */
function procStat(): { ppid: number; pgrp: number } | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Calls `onOrphaned` once when what launched this process is gone: its parent
 * died (the process was re-parented), or the leader of its process group
 * exited. The second rule covers wrapper chains that do not pass SIGTERM on:
 * a shell starts `npx … exec tributary up` as the group leader, and a SIGTERM
 * to npx ends npx while pnpm and tributary below it live on. A process that
 * leads its own group (systemd, containers, `setsid`) only watches its parent.
 */
export function watchOrphaned(onOrphaned: (why: string) => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  const leader = procStat()?.pgrp ?? process.pid;
  const timer = setInterval(() => {
    let why: string | null = null;
    if (process.ppid !== parent) why = `its parent process ${parent} exited`;
    else if (leader !== process.pid && !alive(leader)) why = `the process group leader ${leader} that launched it exited`;
    if (why === null) return;
    clearInterval(timer);
    onOrphaned(why);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
