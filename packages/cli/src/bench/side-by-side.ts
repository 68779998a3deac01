/**
 * Side-by-side bench: the same works through Tributary and, when FLUENT_BIT
 * names a Fluent Bit binary, through Fluent Bit, one after the other in the
 * same run (each pair back to back), on loopback. For each work it prints the
 * events delivered per second (events that reached the far end, from the
 * first send until the last one arrived), the agent's peak RSS, the CPU
 * seconds of every process, and the ratio Tributary / Fluent Bit.
 *
 *   edge packed       PackedForward 1000 x ~200 B per chunk, ack per chunk, 2 connections
 *   edge message      Message mode, 16 connections, an ack every 100 messages
 *   edge message-ack  Message mode, 16 connections, an ack per message
 *   aggregator files  PackedForward, 2 connections, into files
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAggregatorBench } from './aggregator';
import { FLUENT_BIT_EDGE, FLUENT_BIT_FILES, LineCounter, fluentBitBinary, startFluentBitEdge, startFluentBitFiles } from './fluent-bit';
import { type Edge, type ForwarderBenchMode, runForwarderBench, sendPacked } from './forwarder';
import { peakRssMb, startCpuMeter, stopProcess } from './loopback';
import type { BenchResult } from './stats';

/** Most time to wait for Fluent Bit's files to hold every acked event after sending stops. */
const FILES_DRAIN_LIMIT_MS = 180_000;

export interface SideBySideRow {
  work: string;
  tributary: BenchResult;
  tributaryDoes: string;
  fluentBit?: BenchResult;
  fluentBitDoes: string;
}

interface Work {
  /** The name `--works` selects it by. */
  key: string;
  work: string;
  tributaryDoes: string;
  fluentBitDoes: string;
  /** encoderThreads: the aggregator work's egress.encoder_threads (its default when absent); the edge works ignore it */
  tributary: (seconds: number, encoderThreads?: number) => Promise<BenchResult>;
  fluentBit: (binary: string, seconds: number) => Promise<BenchResult>;
}

function edgeWork(work: string, mode: ForwarderBenchMode, connections: number): Work {
  return {
    key: mode,
    work,
    tributaryDoes: 'forwarder, disk buffer (fsync: interval, every 1 s, as deploy/ runs it)',
    fluentBitDoes: FLUENT_BIT_EDGE,
    tributary: (seconds) => runForwarderBench(mode, seconds, connections),
    fluentBit: (binary, seconds) => {
      const edge: Edge = { name: 'fluent-bit', start: (dir, receiverPort) => startFluentBitEdge(binary, dir, receiverPort) };
      return runForwarderBench(mode, seconds, connections, edge);
    },
  };
}

const WORKS: Work[] = [
  edgeWork('edge, PackedForward with acks (2 connections)', 'packed', 2),
  edgeWork('edge, Message mode, ack every 100 messages (16 connections)', 'message', 16),
  edgeWork('edge, Message mode, ack per message (16 connections)', 'message-ack', 16),
  {
    key: 'aggregator',
    work: 'aggregator: acked in -> files (2 connections)',
    tributaryDoes: 'aggregator, embedded log and dedupe, file sink: gzip NDJSON, fdatasync',
    fluentBitDoes: FLUENT_BIT_FILES,
    tributary: async (seconds, encoderThreads) =>
      (await runAggregatorBench(seconds, 2, 'file', 'embedded', 'none', encoderThreads)).delivered,
    fluentBit: runFluentBitFilesBench,
  },
];

/**
 * Fluent Bit into files: PackedForward with acks in, delivered = lines in
 * its output files, counted once sending stops (so counting costs the sender
 * nothing while it sends) until every acked event is there.
 */
async function runFluentBitFilesBench(binary: string, seconds: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'trb-bench-fb-files-'));
  try {
    const out = join(dir, 'out');
    const fb = await startFluentBitFiles(binary, dir, out);
    try {
      const start = Date.now();
      const cpuUsed = startCpuMeter({ 'fluent-bit': fb.child.pid as number });
      const sent = await sendPacked(fb.port, seconds, 2);
      const sendEnd = Date.now();
      const lines = new LineCounter(out);
      let delivered = lines.count();
      while (delivered < sent.sentEvents && Date.now() - sendEnd < FILES_DRAIN_LIMIT_MS && fb.child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 20));
        delivered = lines.count();
      }
      const elapsed = (Date.now() - start) / 1000;
      return {
        name: 'fluent-bit delivered (ack -> out_file), 2 conns',
        events: delivered,
        sentEvents: sent.sentEvents,
        bytes: sent.sentBytes * (delivered / Math.max(1, sent.sentEvents)),
        seconds: elapsed,
        peakRssMb: peakRssMb(fb.child.pid as number),
        cpu: cpuUsed(),
      };
    } finally {
      await stopProcess(fb.child);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The works `--works` can name, in the order they run. */
export const WORK_KEYS: readonly string[] = WORKS.map((w) => w.key);

/**
 * Runs every work (or those `only` names, by key) through Tributary, then
 * (when a binary is given) through Fluent Bit, and reports each pair as it finishes.
 */
export async function runSideBySide(
  seconds: number,
  onRow: (row: SideBySideRow) => void = () => {},
  only: readonly string[] = WORK_KEYS,
  encoderThreads?: number,
): Promise<SideBySideRow[]> {
  const binary = fluentBitBinary();
  const rows: SideBySideRow[] = [];
  for (const w of WORKS.filter((x) => only.includes(x.key))) {
    const row: SideBySideRow = {
      work: w.work,
      tributaryDoes: w.tributaryDoes,
      fluentBitDoes: w.fluentBitDoes,
      tributary: await w.tributary(seconds, encoderThreads),
      ...(binary ? { fluentBit: await w.fluentBit(binary, seconds) } : {}),
    };
    rows.push(row);
    onRow(row);
  }
  return rows;
}

const rate = (r: BenchResult) => r.events / r.seconds;
const fmtRate = (r: BenchResult) => `${Math.round(rate(r)).toLocaleString('en-US')} ev/s`;
const fmtCpu = (r: BenchResult) =>
  Object.entries(r.cpu ?? {})
    .map(([who, s]) => `${who} ${s.toFixed(1)}`)
    .join(', ');
/** CPU microseconds the agent (every process but the sender and the receiver) spent per delivered event: the figure a shared machine disturbs least. */
export function agentCpuPerEvent(r: BenchResult): number {
  const agent = Object.entries(r.cpu ?? {})
    .filter(([who]) => who !== 'sender' && who !== 'receiver')
    .reduce((sum, [, s]) => sum + s, 0);
  return r.events > 0 ? (agent / r.events) * 1e6 : Number.NaN;
}

/** Says when what arrived is not what was acked: fewer (the drain limit was reached) or more (duplicates). */
const incomplete = (r: BenchResult) => {
  if (r.sentEvents === undefined || r.events === r.sentEvents) return '';
  const counts = `${r.events.toLocaleString('en-US')} arrived of ${r.sentEvents.toLocaleString('en-US')} acked`;
  return r.events < r.sentEvents ? ` (INCOMPLETE: ${counts})` : ` (DUPLICATES: ${counts})`;
};

/** The ratio of delivered rates, Tributary / Fluent Bit (NaN when either delivered nothing). */
export function ratio(row: SideBySideRow): number {
  if (!row.fluentBit || row.fluentBit.events === 0 || row.tributary.events === 0) return Number.NaN;
  return rate(row.tributary) / rate(row.fluentBit);
}

/** One work's lines: each side's delivered rate, peak RSS, CPU seconds and what it does, then the ratio. */
export function formatRow(row: SideBySideRow): string {
  const side = (who: string, r: BenchResult, does: string) =>
    `  ${who.padEnd(10)} ${fmtRate(r).padStart(14)} delivered  peak RSS ${r.peakRssMb.toFixed(0)} MB  ${agentCpuPerEvent(r).toFixed(2)} µs agent CPU/event  cpu s (${r.seconds.toFixed(1)} s wall): ${fmtCpu(r)}${incomplete(r)}\n             ${does}`;
  const lines = [`${row.work}`, side('Tributary', row.tributary, row.tributaryDoes)];
  if (row.fluentBit) {
    lines.push(side('Fluent Bit', row.fluentBit, row.fluentBitDoes));
    lines.push(`  ratio Tributary / Fluent Bit: ${ratio(row).toFixed(2)}x`);
  }
  return lines.join('\n');
}

/** The Markdown table docs/benchmarks.md shows. */
export function formatTable(rows: SideBySideRow[]): string {
  const cell = (r?: BenchResult) =>
    r ? `${fmtRate(r)}, ${r.peakRssMb.toFixed(0)} MB, ${agentCpuPerEvent(r).toFixed(2)} µs CPU/ev${incomplete(r)}` : 'not run';
  return [
    '| work | Tributary | Fluent Bit | ratio |',
    '|---|---|---|---|',
    ...rows.map(
      (row) => `| ${row.work} | ${cell(row.tributary)} | ${cell(row.fluentBit)} | ${row.fluentBit ? `${ratio(row).toFixed(2)}×` : '–'} |`,
    ),
  ].join('\n');
}
