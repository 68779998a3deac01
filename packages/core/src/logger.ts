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
