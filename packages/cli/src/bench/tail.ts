/**
 * Tail benchmark: lines/s from files into the disk buffer, with 1 file and
 * with 100 files, ~200-byte lines, the `none` and `json` parsers, and the
 * tail process's peak RSS (tail-worker.ts, its own process). The files are
 * written first; the clock runs from the input's start until every line is
 * in the buffer (read_from_head, as a backlog after an outage is read).
 *
 * When /work/shared/fluent-bit/bin/fluent-bit (or TRB_FLUENT_BIT) exists,
 * the same files are read by Fluent Bit's tail (read_from_head, a position
 * DB) into its counter output, timed to the last line counted.
 */
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, peakRssMb } from './loopback';
import type { BenchResult } from './stats';

const FLUENT_BIT = process.env.TRB_FLUENT_BIT ?? '/work/shared/fluent-bit/bin/fluent-bit';

/** A ~200-byte line: plain text for `none`, a JSON object for `json`. */
function line(i: number, parser: string): string {
  const text = `GET /api/v1/items/${i} 200 user=u${i % 977} agent="Mozilla/5.0 (X11; Linux x86_64)" trace=${(i * 2654435761).toString(16).padStart(12, '0')}`;
  const body = parser === 'json' ? JSON.stringify({ level: 'info', seq: i, msg: text }) : `2026-12-07T03:00:00.000Z INFO ${text}`;
  return `${body}${' '.repeat(Math.max(0, 199 - body.length))}\n`;
}

function writeFiles(dir: string, files: number, lines: number, parser: string): number {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  let bytes = 0;
  const perFile = Math.floor(lines / files);
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    for (let i = 0; i < perFile; i++) parts.push(line(f * perFile + i, parser));
    const text = parts.join('');
    bytes += Buffer.byteLength(text);
    writeFileSync(join(dir, 'logs', `f${f}.log`), text);
  }
  return bytes;
}

function runWorker(
  dir: string,
  parser: string,
  lines: number,
): Promise<{ events: number; seconds: number; cpuSeconds: number; peakRssMb: number }> {
  const child = fork(join(__dirname, 'tail-worker.js'), [dir, parser, String(lines)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--max-semi-space-size=4', '--max-old-space-size=128', '--initial-old-space-size=64'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m: { events: number; seconds: number; cpuSeconds: number; peakRssMb: number; error?: string }) => {
      if (m.error) reject(new Error(m.error));
      else resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`the tail bench worker exited (${code}) before reporting`)));
  });
}

/**
 * Fluent Bit's tail on the same files into its counter output: seconds until
 * its monitoring API counts every line out, and its peak RSS. (The counter's
 * own lines sit in stdout's buffer when it is a pipe, so they cannot time it.)
 */
async function runFluentBit(dir: string, lines: number): Promise<{ seconds: number; cpuSeconds: number; peakRssMb: number } | null> {
  if (!existsSync(FLUENT_BIT)) return null;
  const port = await freePort();
  const child = spawn(
    FLUENT_BIT,
    [
      '-H',
      '-L',
      '127.0.0.1',
      '-P',
      String(port),
      '-f',
      '1',
      '-i',
      'tail',
      '-p',
      `path=${join(dir, 'logs', '*.log')}`,
      '-p',
      'read_from_head=on',
    ].concat(['-p', `db=${join(dir, 'fb.db')}`, '-o', 'counter']),
    { stdio: 'ignore' },
  );
  const started = process.hrtime.bigint();
  let peak = 0;
  try {
    const deadline = Date.now() + 600_000;
    while (Date.now() < deadline && child.exitCode === null) {
      peak = Math.max(peak, peakRssMb(child.pid ?? 0) || 0);
      const out = await fetch(`http://127.0.0.1:${port}/api/v1/metrics`)
        .then((r) => r.json() as Promise<{ output?: Record<string, { proc_records?: number }> }>)
        .catch(() => null);
      const done = Object.values(out?.output ?? {}).reduce((n, o) => n + (o.proc_records ?? 0), 0);
      if (done >= lines) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        return { seconds, cpuSeconds: cpuSecondsOf(child.pid ?? 0), peakRssMb: Math.max(peak, peakRssMb(child.pid ?? 0)) };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return null;
  } finally {
    child.kill('SIGKILL');
  }
}

/** User + system CPU seconds a live process used (/proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs every case, handing each result to `report` as it is measured. */
export async function runTailBench(lines: number, report: (r: BenchResult | string) => void): Promise<void> {
  for (const files of [1, 100]) {
    for (const parser of ['none', 'json']) {
      const dir = mkdtempSync(join(tmpdir(), 'trb-bench-tail-'));
      try {
        const bytes = writeFiles(dir, files, lines, parser);
        const r = await runWorker(dir, parser, Math.floor(lines / files) * files);
        report({
          name: `tail ${files} file${files > 1 ? 's' : ''}, ${parser} parser`,
          events: r.events,
          bytes,
          seconds: r.seconds,
          peakRssMb: r.peakRssMb,
          cpu: { tail: r.cpuSeconds },
        });
        if (parser === 'none') {
          const fb = await runFluentBit(dir, Math.floor(lines / files) * files);
          if (fb) {
            report({
              name: `fluent-bit tail ${files} file${files > 1 ? 's' : ''} (counter out)`,
              events: Math.floor(lines / files) * files,
              bytes,
              seconds: fb.seconds,
              peakRssMb: fb.peakRssMb,
              cpu: { 'fluent-bit': fb.cpuSeconds },
            });
          } else report(`Fluent Bit not run (${FLUENT_BIT} missing or it exited early).`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}
