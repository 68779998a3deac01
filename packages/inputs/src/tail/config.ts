/**
 * The tail input's configuration (Fluentd in_tail / Fluent Bit tail): schema
 * (defaults and descriptions; the configuration reference is generated from
 * it) and the type derived from it. The input is built only when a role's
 * config has a `tail:` key.
 */
import type { FromSchema } from 'json-schema-to-ts';

export const tailInputSchema = {
  type: 'object',
  description:
    'Tail input (Fluentd in_tail compatible): follows files matched by globs through rotation; a position advances only once the buffer accepted the lines.',
  additionalProperties: false,
  required: ['path'],
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Tail the files.' },
    path: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: 'Glob patterns of the files to follow (`/var/log/nginx/*.log`); `app.log*` may match rotated files, each is read once.',
    },
    exclude_path: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Glob patterns of files never followed (absolute, or relative to the working directory, as `path`).',
    },
    tag: {
      type: 'string',
      minLength: 1,
      default: 'tail.*',
      description:
        'Tag of the events; a `*` is replaced by the file path with `/` as `.` (`app.*` + `/var/log/a.log` → `app.var.log.a.log`).',
    },
    path_key: { type: 'string', minLength: 1, description: 'When set, each record gets the path of its file under this key.' },
    read_from_head: {
      type: 'boolean',
      default: false,
      description:
        'Files found at the first start (no saved position) are read from their beginning; otherwise from their end. Files appearing later are always read from their beginning.',
    },
    refresh_interval_ms: {
      type: 'integer',
      minimum: 10,
      default: 5000,
      description: 'How often the globs are expanded again to find new files.',
    },
    poll_interval_ms: {
      type: 'integer',
      minimum: 1,
      default: 250,
      description: 'How often followed files are checked for new data, rotation and deletion when idle.',
    },
    rotate_wait_ms: {
      type: 'integer',
      minimum: 0,
      default: 5000,
      description: 'After a file was renamed away (rotation) or deleted, it is read for this long more, then closed once read to its end.',
    },
    positions_path: {
      type: 'string',
      default: './data/tail-positions.journal',
      description: 'Position journal (Fluentd pos_file): where each file was read to; written with every batch handed to the buffer.',
    },
    forget_after_ms: {
      type: 'integer',
      minimum: 0,
      default: 86400000,
      description: 'The position of a file no glob matched for this long is forgotten (keeps the journal bounded).',
    },
    max_line_bytes: {
      type: 'integer',
      minimum: 64,
      maximum: 4194304,
      default: 262144,
      description:
        "Longest line (or multiline record); longer ones are cut or skipped (`long_lines`) and counted. At most a quarter of the buffer's `chunk_limit_bytes`.",
    },
    long_lines: {
      enum: ['cut', 'skip'],
      default: 'cut',
      description: 'A line over `max_line_bytes`: keep its first `max_line_bytes` bytes (cut) or drop it (skip).',
    },
    parser: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How a line becomes a record. A line that fails to parse is kept as `{message}` and counted.',
      if: { properties: { type: { const: 'regex' } }, required: ['type'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then (a regex parser needs its expression), not a thenable
      then: { required: ['expression'] },
      properties: {
        type: {
          enum: ['none', 'json', 'regex', 'nginx', 'apache2', 'syslog_rfc3164', 'syslog_rfc5424'],
          default: 'none',
          description:
            '`none`: `{message: line}`; `json`; `regex` (named groups of `expression`); ready-made nginx, apache2 (combined) and syslog formats.',
        },
        expression: {
          type: 'string',
          minLength: 1,
          description: 'For `regex`: a JavaScript regular expression with named groups, which become the keys.',
        },
        time_key: {
          type: 'string',
          minLength: 1,
          description: "The record key holding the event's time (removed from the record); without it, the read time.",
        },
        time_format: {
          type: 'string',
          minLength: 1,
          description:
            'How `time_key` is written: strptime-style (`%d/%b/%Y:%H:%M:%S %z`), `iso8601`, `unix` (seconds) or `unix_ms`; by default ISO 8601 or a number of seconds.',
        },
        keep_time_key: { type: 'boolean', default: false, description: 'Keep `time_key` in the record.' },
      },
    },
    multiline: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Joining lines into one record before parsing.',
      if: { properties: { mode: { const: 'regex' } }, required: ['mode'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then (regex mode needs first_line), not a thenable
      then: { required: ['first_line'] },
      properties: {
        mode: {
          enum: ['none', 'regex', 'java', 'python', 'docker', 'cri'],
          default: 'none',
          description:
            '`regex`: a record starts at a line matching `first_line`; `java`/`python`: stack traces; `docker`: Docker json-file lines (partial lines joined, `log` is the line); `cri`: CRI (containerd) lines, partial (P) ones joined.',
        },
        first_line: {
          type: 'string',
          minLength: 1,
          description: 'For `regex`: a record starts at a line matching this JavaScript regular expression.',
        },
        flush_ms: {
          type: 'integer',
          minimum: 1,
          default: 1000,
          description: 'A record still open is ended once its file gave no new line for this long.',
        },
      },
    },
  },
} as const;

/** The tail input's config as validated, defaults filled in: derived from the schema, never written by hand. */
export type TailInputConfig = FromSchema<typeof tailInputSchema>;
