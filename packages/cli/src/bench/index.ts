import { type AggregatorBenchCompress, type AggregatorBenchLog, type AggregatorBenchSink, runAggregatorBench } from './aggregator';
import { FLUENT_BIT_TAIL, fluentBitBinary } from './fluent-bit';
import { BENCH_FILTERS, runForwarderBench, tributaryEdge } from './forwarder';
import { stopChildrenOnSignal } from './loopback';
import { runProtocolBench } from './protocol';
import { WORK_KEYS, formatRow, formatTable, runSideBySide } from './side-by-side';
import { formatResult } from './stats';
import { TRIBUTARY_TAIL, formatTailCase, formatTailTable, runTailBench } from './tail';

/** The options of `tributary bench` as given on the command line: absent when not given (runBench's defaults apply). */
export interface BenchOptions {
  /** measuring time per case (3 s when absent) */
  seconds?: number;
  /** sender connections (forwarder-packed and aggregator 2, forwarder-message(-ack) 16 when absent) */
  connections?: number;
  /** aggregator: file | s3 (file when absent) */
  sink?: string;
  /** aggregator: embedded | kafka (embedded when absent) */
  log?: string;
  /** aggregator: none | gzip (the sender sends CompressedPackedForward; none when absent) */
  compress?: string;
  /** forwarder-*: a key of BENCH_FILTERS (none when absent) */
  filters?: string;
  /** side-by-side: the works to run (keys of WORK_KEYS); all when absent */
  works?: string[];
  /** aggregator, side-by-side's aggregator work: egress.encoder_threads (the aggregator's auto when absent) */
  encoderThreads?: number;
  /** tail: lines written per case (2 M when absent) */
  lines?: number;
}

/** Lines the tail bench writes per case unless --lines says otherwise (~400 MB of ~200-byte lines). */
const TAIL_LINES = 2_000_000;

const FORWARDER_OPTIONS = ['seconds', 'connections', 'filters'] as const;

/**
 * The suites and the options each takes: an option given to a suite that does
 * not take it is refused before the bench starts anything (tail reads a fixed
 * backlog, so it has no --seconds; side-by-side's works fix their own connections).
 */
const SUITE_OPTIONS: Record<string, readonly (keyof BenchOptions)[]> = {
  protocol: ['seconds'],
  'forwarder-packed': FORWARDER_OPTIONS,
  'forwarder-message': FORWARDER_OPTIONS,
  'forwarder-message-ack': FORWARDER_OPTIONS,
  aggregator: ['seconds', 'connections', 'sink', 'log', 'compress', 'encoderThreads'],
  tail: ['lines'],
  'side-by-side': ['seconds', 'works', 'encoderThreads'],
};

/** An option's flag as the command line spells it: encoderThreads -> --encoder-threads. */
const flag = (option: string) => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Throws unless `suite` is known and every option given is one it takes. */
function checkSuiteOptions(suite: string, options: BenchOptions): void {
  if (!Object.hasOwn(SUITE_OPTIONS, suite)) {
    throw new Error(`Unknown bench suite "${suite}" (known: ${Object.keys(SUITE_OPTIONS).join(', ')}).`);
  }
  const takes = SUITE_OPTIONS[suite];
  const refused = (Object.keys(options) as (keyof BenchOptions)[]).filter((o) => options[o] !== undefined && !takes.includes(o));
  if (refused.length) {
    throw new Error(`bench ${suite} does not take ${refused.map(flag).join(', ')} (it takes ${takes.map(flag).join(', ')}).`);
  }
}

/** Runs one suite with the options given; refuses, before it starts anything, a suite it does not know and an option that suite does not take. */
export async function runBench(suite: string, options: BenchOptions): Promise<void> {
  checkSuiteOptions(suite, options);
  const {
    seconds = 3,
    connections,
    sink = 'file',
    log = 'embedded',
    compress = 'none',
    filters = 'none',
    works,
    encoderThreads,
    lines = TAIL_LINES,
  } = options;
  stopChildrenOnSignal();
  if (!Object.hasOwn(BENCH_FILTERS, filters))
    throw new Error(`--filters must be ${Object.keys(BENCH_FILTERS).join(' | ')} (got ${filters}).`);
  if (connections !== undefined && !(Number.isInteger(connections) && connections > 0)) {
    throw new Error(`--connections must be a positive integer (got ${connections}).`);
  }
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new Error(`--seconds must be a positive number (got ${seconds}).`);
  if (encoderThreads !== undefined && !(Number.isInteger(encoderThreads) && encoderThreads >= 0 && encoderThreads <= 16)) {
    throw new Error(`--encoder-threads must be an integer from 0 to 16 (got ${encoderThreads}).`);
  }
  // at least a line per file of the 100-file cases
  if (!(Number.isInteger(lines) && lines >= 100)) throw new Error(`--lines must be an integer of at least 100 (got ${lines}).`);
  console.log(`# tributary bench ${suite} — node ${process.version}, ${require('node:os').cpus().length} cores`);
  switch (suite) {
    case 'protocol':
      for (const r of runProtocolBench(seconds)) console.log(formatResult(r));
      return;
    case 'forwarder-packed':
      console.log(formatResult(await runForwarderBench('packed', seconds, connections ?? 2, tributaryEdge(filters))));
      return;
    case 'forwarder-message':
      console.log(formatResult(await runForwarderBench('message', seconds, connections ?? 16, tributaryEdge(filters))));
      return;
    case 'forwarder-message-ack':
      console.log(formatResult(await runForwarderBench('message-ack', seconds, connections ?? 16, tributaryEdge(filters))));
      return;
    case 'aggregator': {
      if (sink !== 'file' && sink !== 's3') throw new Error(`--sink must be file or s3 (got ${sink}).`);
      if (log !== 'embedded' && log !== 'kafka') throw new Error(`--log must be embedded or kafka (got ${log}).`);
      if (compress !== 'none' && compress !== 'gzip') throw new Error(`--compress must be none or gzip (got ${compress}).`);
      const r = await runAggregatorBench(
        seconds,
        connections ?? 2,
        sink as AggregatorBenchSink,
        log as AggregatorBenchLog,
        compress as AggregatorBenchCompress,
        encoderThreads,
      );
      console.log(formatResult(r.delivered));
      console.log(formatResult(r.ingest));
      for (const n of r.notes) console.log(n);
      return;
    }
    case 'tail': {
      console.log(
        `Each case: ${lines.toLocaleString('en-US')} lines written first, then read from the head and delivered to an acking receiver,`,
      );
      console.log(
        `timed from the agent's start until the receiver acked the last line.\n  Tributary:  ${TRIBUTARY_TAIL}\n  Fluent Bit: ${FLUENT_BIT_TAIL}`,
      );
      const cases = await runTailBench(lines, (c) => console.log(formatTailCase(c)));
      console.log(`\n${formatTailTable(cases)}`);
      return;
    }
    case 'side-by-side': {
      const unknown = (works ?? []).filter((w) => !WORK_KEYS.includes(w));
      if (unknown.length) throw new Error(`--works takes ${WORK_KEYS.join(', ')} (got ${unknown.join(', ')}).`);
      const binary = fluentBitBinary();
      console.log(
        binary
          ? `Each work runs through Tributary, then through Fluent Bit (${binary}), for ${seconds} s of sending.`
          : 'FLUENT_BIT is not set: each work runs through Tributary alone (set FLUENT_BIT to a Fluent Bit binary for the side-by-side).',
      );
      const rows = await runSideBySide(seconds, (row) => console.log(formatRow(row)), works, encoderThreads);
      console.log(`\n${formatTable(rows)}`);
      return;
    }
  }
}
