/**
 * Joining lines into records before parsing, per file. A grouper is fed the
 * file's complete lines in order, with their offsets, and hands out the
 * records they complete; `openStart` is where its unfinished record began,
 * which is as far as the file's position may advance (a crash then re-reads
 * that record whole). Modes:
 *
 *   regex    a record starts at a line matching `first_line`
 *   java     a record starts at a line that is not part of a stack trace (frames,
 *            `Caused by:`, `... N more`, the exception's class line)
 *   python   a `Traceback (most recent call last):` line, its indented lines
 *            and the exception line after them join the record before them
 *   docker   each line is Docker json-file JSON; `log` parts not ending in
 *            `\n` are joined with the next (16 KiB split lines)
 *   cri      `<time> <stream> <P|F> <text>`; P parts are joined up to the F one
 *
 * Records are at most `maxBytes` of text: one that would grow past it is
 * ended first. Pure (no I/O, no timers: the caller flushes on `flush_ms`).
 */
import type { EventTime } from '@tributary/forward-protocol';
import { timeReader } from './parsers';

export interface Group {
  text: string;
  /** The time the container runtime wrote (docker, cri). */
  time?: EventTime;
  /** Fields the format adds besides the text (docker, cri: `stream`). */
  stream?: string;
}

export interface Grouper {
  /** Offset where the open record began, or null when none is open. */
  readonly openStart: number | null;
  /** A complete line (no newline) that began at `start`; completed records are pushed onto `out`. */
  push(line: string, start: number, out: Group[]): void;
  /** Ends the open record, if any. */
  flush(out: Group[]): void;
  /** Drops the open record (the file is read again from its position). */
  reset(): void;
}

export type MultilineMode = 'none' | 'regex' | 'java' | 'python' | 'docker' | 'cri';

/** Not a stack trace's continuation: indented frames, `Caused by:`, `... N more`, nor the exception line (`java.io.IOException: …`). */
const JAVA_FIRST_LINE = /^(?!\s|Caused by:|Suppressed:|\.\.\. \d+|[\w$]+(?:\.[\w$]+)+(?:Exception|Error|Throwable)\b)/;
const readIso = timeReader('iso8601');

/** A grouper for `mode`, or null for `none` (every line is a record). */
export function createGrouper(mode: MultilineMode, firstLine: string | undefined, maxBytes: number): Grouper | null {
  switch (mode) {
    case 'none':
      return null;
    case 'regex':
      if (firstLine === undefined) throw new Error('multiline.mode regex needs multiline.first_line.');
      return new JoinGrouper(maxBytes, startsWith(new RegExp(firstLine)));
    case 'java':
      return new JoinGrouper(maxBytes, startsWith(JAVA_FIRST_LINE));
    case 'python':
      return new JoinGrouper(maxBytes, pythonStarts());
    case 'docker':
      return new PartsGrouper(maxBytes, dockerPart);
    case 'cri':
      return new PartsGrouper(maxBytes, criPart);
  }
}

function startsWith(re: RegExp): (line: string) => boolean {
  return (line) => re.test(line);
}

/** Python: everything of a traceback continues the record before it, up to and with the exception line. */
function pythonStarts(): (line: string) => boolean {
  let inTraceback = false;
  return (line) => {
    if (
      line.startsWith('Traceback (most recent call last):') ||
      /^During handling of the above exception|^The above exception was/.test(line)
    ) {
      inTraceback = true;
      return false;
    }
    if (/^\s/.test(line) || line === '') return false;
    if (inTraceback) {
      inTraceback = false;
      return false; // the exception line ends the traceback
    }
    return true;
  };
}

/** Lines joined with `\n`; a line for which `isFirst` holds starts a new record. */
class JoinGrouper implements Grouper {
  openStart: number | null = null;
  private lines: string[] = [];
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly isFirst: (line: string) => boolean,
  ) {}

  push(line: string, start: number, out: Group[]): void {
    const first = this.isFirst(line);
    if (this.openStart !== null && (first || this.bytes + 1 + line.length > this.maxBytes)) this.flush(out);
    if (this.openStart === null) this.openStart = start;
    this.lines.push(line);
    this.bytes += line.length + 1;
  }

  flush(out: Group[]): void {
    if (this.openStart === null) return;
    out.push({ text: this.lines.join('\n') });
    this.reset();
  }

  reset(): void {
    this.openStart = null;
    this.lines = [];
    this.bytes = 0;
  }
}

interface Part {
  text: string;
  last: boolean;
  stream?: string;
  time?: EventTime;
}

function dockerPart(line: string): Part | null {
  let value: { log?: unknown; stream?: unknown; time?: unknown };
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || typeof value.log !== 'string') return null;
  const last = value.log.endsWith('\n');
  return {
    text: last ? value.log.slice(0, -1) : value.log,
    last,
    stream: typeof value.stream === 'string' ? value.stream : undefined,
    time: readIso(value.time) ?? undefined,
  };
}

const CRI_LINE = /^(\S+) (stdout|stderr) ([PF])(?: (.*))?$/;

function criPart(line: string): Part | null {
  const m = CRI_LINE.exec(line);
  if (!m) return null;
  return { text: m[4] ?? '', last: m[3] === 'F', stream: m[2], time: readIso(m[1]) ?? undefined };
}

/** Runtime formats: parts joined until one marked last; a line that is not of the format is a record of its own. */
class PartsGrouper implements Grouper {
  openStart: number | null = null;
  private parts: string[] = [];
  private bytes = 0;
  private head: Part | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly parse: (line: string) => Part | null,
  ) {}

  push(line: string, start: number, out: Group[]): void {
    const part = this.parse(line) ?? { text: line, last: true };
    if (this.openStart !== null && this.bytes + part.text.length > this.maxBytes) this.flush(out);
    if (this.openStart === null) {
      this.openStart = start;
      this.head = part;
    }
    this.parts.push(part.text);
    this.bytes += part.text.length;
    if (part.last) this.flush(out);
  }

  flush(out: Group[]): void {
    if (this.openStart === null) return;
    out.push({ text: this.parts.join(''), time: this.head?.time, stream: this.head?.stream });
    this.reset();
  }

  reset(): void {
    this.openStart = null;
    this.parts = [];
    this.bytes = 0;
    this.head = null;
  }
}
