/**
 * Tail benchmark, end to end: lines/s from files on disk to the bench's
 * acking receiver (receiver.ts, as in the side-by-side bench), with 1 file
 * and with 100 files, ~200-byte lines, the `none` and `json` parsers.
 *
 * The files are written first (a backlog, as after an outage). Then a
 * Tributary forwarder process (started as the forwarder bench starts it, with
 * the deployed node flags) tails them from their head into its disk buffer
 * and forwards them, an ack per chunk, to the receiver. The clock runs from
 * the forwarder's start until the receiver has acked every line. Then Fluent
 * Bit (the binary FLUENT_BIT names, as for the side-by-side bench; not run
 * when it is unset, empty or missing) reads the same files the same way (in_tail
 * read_from_head with a position DB, filesystem storage, out_forward with
 * require_ack_response) to a receiver of its own, timed the same way.
 *
 * Reported per agent: lines/s delivered, lines delivered of lines written,
 * the agent process's CPU seconds and peak RSS; and the ratio of the rates.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fluentBitBinary, startFluentBitTail } from './fluent-bit';
import { startForwarder, startReceiver } from './forwarder';
import { cpuSeconds, peakRssMb, stopProcess } from './loopback';
import { stopRole } from './role-process';

export const TRIBUTARY_TAIL = 'forwarder: tail read_from_head -> disk buffer (fsync: interval, 1 s) -> forward output, ack per chunk';

export type TailParser = 'none' | 'json';

/** One agent's run of a case. */
export interface TailRun {
  /** Lines the receiver acked when the run ended. */
  delivered: number;
  /** From the agent's start until the receiver had acked every line (or the run's time limit). */
  seconds: number;
  /** User + system CPU seconds of the agent process over its life. */
  cpuSeconds: number;
  peakRssMb: number;
}

export interface TailCase {
  name: string;
  /** Lines written to the files, the count each agent must deliver. */
  lines: number;
  tributary: TailRun;
  fluentBit?: TailRun;
  /** Why Fluent Bit has no run, when it has none. */
  fluentBitSkipped?: string;
}

/** A ~200-byte line: plain text for `none`, a JSON object for `json`. */
function line(i: number, parser: TailParser): string {
  const text = `GET /api/v1/items/${i} 200 user=u${i % 977} agent="Mozilla/5.0 (X11; Linux x86_64)" trace=${(i * 2654435761).toString(16).padStart(12, '0')}`;
  const body = parser === 'json' ? JSON.stringify({ level: 'info', seq: i, msg: text }) : `2026-12-07T03:00:00.000Z INFO ${text}`;
  return `${body}${' '.repeat(Math.max(0, 199 - body.length))}\n`;
}

/** Writes `files` files of `perFile` lines each under <dir>/logs. */
function writeFiles(dir: string, files: number, perFile: number, parser: TailParser): void {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  for (let f = 0; f < files; f++) {
    const parts: string[] = [];
    for (let i = 0; i < perFile; i++) parts.push(line(f * perFile + i, parser));
    writeFileSync(join(dir, 'logs', `f${f}.log`), parts.join(''));
  }
}

/** Most time one run may take to deliver its lines: 30 s, plus 1 s per 10,000 lines (2 M lines: 230 s). */
export function deliveryLimitMs(lines: number): number {
  return 30_000 + lines / 10;
}

/**
 * Waits (bounded by deliveryLimitMs) until the receiver has acked `lines`
 * lines, then reads the agent's CPU seconds and peak RSS while it still runs.
 * Rejects when the agent exits first.
 */
async function measure(who: string, agent: ChildProcess, received: () => number, lines: number, started: bigint): Promise<TailRun> {
  const deadline = Date.now() + deliveryLimitMs(lines);
  const alive = () => agent.exitCode === null && agent.signalCode === null;
  while (received() < lines && alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (!alive()) throw new Error(`${who} exited (${agent.exitCode ?? agent.signalCode}) after delivering ${received()} of ${lines} lines.`);
  const pid = agent.pid as number;
  return { delivered: received(), seconds, cpuSeconds: cpuSeconds(pid), peakRssMb: peakRssMb(pid) };
}

/** The Tributary forwarder tails <dir>/logs into its disk buffer and forwards to a receiver; both stopped on every path. */
async function runTributary(dir: string, parser: TailParser, lines: number): Promise<TailRun> {
  const receiver = await startReceiver();
  try {
    const started = process.hrtime.bigint();
    const tail = {
      path: [join(dir, 'logs', '*.log')],
      read_from_head: true,
      parser: { type: parser },
      positions_path: join(dir, 'positions.journal'),
    };
    const forwarder = await startForwarder(dir, receiver.port, { tail });
    try {
      return await measure('The forwarder', forwarder.child, receiver.events, lines, started);
    } finally {
      await stopRole(forwarder.child);
    }
  } finally {
    await stopProcess(receiver.child);
  }
}

/** Fluent Bit tails <dir>/logs and forwards to a receiver of its own; both stopped on every path. */
async function runFluentBit(binary: string, dir: string, parser: TailParser, lines: number): Promise<TailRun> {
  const receiver = await startReceiver();
  try {
    const started = process.hrtime.bigint();
    const fluentBit = await startFluentBitTail(binary, dir, join(dir, 'logs', '*.log'), parser, receiver.port);
    try {
      return await measure('Fluent Bit', fluentBit, receiver.events, lines, started);
    } finally {
      await stopProcess(fluentBit);
    }
  } finally {
    await stopProcess(receiver.child);
  }
}

/**
 * Runs every case (1 and 100 files, each parser) with `lines` lines written
 * per case, through Tributary then Fluent Bit, handing each case to `onCase`
 * as it is measured. A Fluent Bit that fails is reported in the case; a
 * Tributary that fails rejects.
 */
export async function runTailBench(lines: number, onCase: (c: TailCase) => void = () => {}): Promise<TailCase[]> {
  const binary = fluentBitBinary();
  const cases: TailCase[] = [];
  for (const files of [1, 100]) {
    for (const parser of ['none', 'json'] as const) {
      const perFile = Math.floor(lines / files);
      const dir = mkdtempSync(join(tmpdir(), 'trb-bench-tail-'));
      try {
        writeFiles(dir, files, perFile, parser);
        const c: TailCase = {
          name: `tail ${files} file${files > 1 ? 's' : ''}, ${parser} parser`,
          lines: perFile * files,
          tributary: await runTributary(dir, parser, perFile * files),
        };
        if (!binary) c.fluentBitSkipped = 'FLUENT_BIT is not set';
        else if (!existsSync(binary)) c.fluentBitSkipped = `${binary} is missing`;
        else {
          try {
            c.fluentBit = await runFluentBit(binary, dir, parser, perFile * files);
          } catch (err) {
            c.fluentBitSkipped = (err as Error).message;
          }
        }
        cases.push(c);
        onCase(c);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return cases;
}

const rate = (r: TailRun) => r.delivered / r.seconds;
const count = (n: number) => n.toLocaleString('en-US');

/** Tributary's delivered rate over Fluent Bit's (NaN without a Fluent Bit run, or when either delivered nothing). */
export function tailRatio(c: TailCase): number {
  if (!c.fluentBit || c.fluentBit.delivered === 0 || c.tributary.delivered === 0) return Number.NaN;
  return rate(c.tributary) / rate(c.fluentBit);
}

/** One case's lines: each agent's delivered rate, lines delivered of written, CPU seconds and peak RSS; then the ratio. */
export function formatTailCase(c: TailCase): string {
  const side = (who: string, r: TailRun) =>
    `  ${who.padEnd(10)} ${count(Math.round(rate(r))).padStart(10)} lines/s delivered  (delivered ${count(r.delivered)} of ${count(c.lines)} lines in ${r.seconds.toFixed(2)} s${r.delivered < c.lines ? ', INCOMPLETE: time limit reached' : r.delivered > c.lines ? ', DUPLICATES' : ''})  agent CPU ${r.cpuSeconds.toFixed(2)} s  peak RSS ${r.peakRssMb.toFixed(0)} MB`;
  const lines = [`${c.name}: ${count(c.lines)} lines of ~200 B`, side('Tributary', c.tributary)];
  if (c.fluentBit) {
    lines.push(side('Fluent Bit', c.fluentBit));
    lines.push(`  ratio Tributary / Fluent Bit (lines/s delivered): ${tailRatio(c).toFixed(2)}x`);
  } else lines.push(`  Fluent Bit not run: ${c.fluentBitSkipped}`);
  return lines.join('\n');
}

/** The Markdown table docs/benchmarks.md shows. */
export function formatTailTable(cases: TailCase[]): string {
  const cells = (r?: TailRun) =>
    r ? `${count(Math.round(rate(r)))} | ${r.cpuSeconds.toFixed(2)} | ${r.peakRssMb.toFixed(0)} MB` : 'not run | – | –';
  return [
    '| case | Tributary lines/s delivered | CPU s | peak RSS | Fluent Bit lines/s delivered | CPU s | peak RSS | ratio |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...cases.map(
      (c) => `| ${c.name} | ${cells(c.tributary)} | ${cells(c.fluentBit)} | ${c.fluentBit ? `${tailRatio(c).toFixed(2)}×` : '–'} |`,
    ),
  ].join('\n');
}
