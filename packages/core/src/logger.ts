/**
 * Structured logging through pino: JSON lines, one per event, fast enough for
 * the hot path's error branches. Messages are complete sentences and carry the
 * error code in `code`.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(
  name: string,
  level = process.env.TRIBUTARY_LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino({ name, level, base: { component: name } }, destination ?? pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (tests, benches). */
export const silentLogger: Logger = pino({ level: 'silent' });

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
