/**
 * The tail input's metrics. Labels are bounded: never a path (there may be
 * thousands of files); lag is one gauge over all files and one for the file
 * furthest behind.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export function createTailMetrics(registry: Registry | undefined) {
  const registers = registry ? [registry] : [];
  return {
    files: new Gauge({ name: 'tributary_tail_files_watched', help: 'Files the tail input holds open', registers }),
    bytesRead: new Counter({ name: 'tributary_tail_read_bytes_total', help: 'Bytes of lines handed to the buffer', registers }),
    lines: new Counter({
      name: 'tributary_tail_lines_total',
      help: 'Records (lines, or joined multiline records) handed to the buffer',
      registers,
    }),
    lagBytes: new Gauge({
      name: 'tributary_tail_lag_bytes',
      help: 'Bytes written to followed files and not yet in the buffer, all files together',
      registers,
    }),
    maxLagBytes: new Gauge({
      name: 'tributary_tail_max_file_lag_bytes',
      help: 'Bytes not yet in the buffer of the file furthest behind',
      registers,
    }),
    rotations: new Counter({
      name: 'tributary_tail_rotations_total',
      help: 'Files seen renamed away, truncated (copytruncate) or deleted',
      labelNames: ['kind'],
      registers,
    }),
    parseErrors: new Counter({ name: 'tributary_tail_parse_errors_total', help: 'Lines that did not parse, kept as {message}', registers }),
    longLines: new Counter({
      name: 'tributary_tail_long_lines_total',
      help: 'Lines over max_line_bytes, cut or skipped',
      labelNames: ['action'],
      registers,
    }),
    errors: new Counter({
      name: 'tributary_tail_errors_total',
      help: 'File and position journal errors, by code',
      labelNames: ['code'],
      registers,
    }),
  };
}

export type TailMetrics = ReturnType<typeof createTailMetrics>;
