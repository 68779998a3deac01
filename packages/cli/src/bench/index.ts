import { type AggregatorBenchLog, type AggregatorBenchSink, runAggregatorBench } from './aggregator';
import { fluentBitBinary } from './fluent-bit';
import { BENCH_FILTERS, runForwarderBench, tributaryEdge } from './forwarder';
import { runProtocolBench } from './protocol';
import { SIDE_BY_SIDE_WORKS, type SideBySideWork, formatRow, formatTable, runSideBySide } from './side-by-side';
import { formatResult } from './stats';
import { runTailBench } from './tail';

export interface BenchOptions {
  seconds: number;
  connections?: number;
  /** aggregator: file | s3 */
  sink: string;
  /** aggregator: embedded | kafka */
  log: string;
  /** forwarder-*: a key of BENCH_FILTERS */
  filters: string;
  /** side-by-side: the works to run, comma-separated (all when absent) */
  works?: string;
}

export async function runBench(suite: string, { seconds, connections, sink, log, filters, works }: BenchOptions): Promise<void> {
  if (!Object.hasOwn(BENCH_FILTERS, filters))
    throw new Error(`--filters must be ${Object.keys(BENCH_FILTERS).join(' | ')} (got ${filters}).`);
  if (connections !== undefined && !(Number.isInteger(connections) && connections > 0)) {
    throw new Error(`--connections must be a positive integer (got ${connections}).`);
  }
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new Error(`--seconds must be a positive number (got ${seconds}).`);
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
    case 'aggregator': {
      if (sink !== 'file' && sink !== 's3') throw new Error(`--sink must be file or s3 (got ${sink}).`);
      if (log !== 'embedded' && log !== 'kafka') throw new Error(`--log must be embedded or kafka (got ${log}).`);
      const r = await runAggregatorBench(seconds, connections ?? 2, sink as AggregatorBenchSink, log as AggregatorBenchLog);
      console.log(formatResult(r.delivered));
      console.log(formatResult(r.ingest));
      for (const n of r.notes) console.log(n);
      return;
    }
    case 'tail': {
      // --seconds does not apply: a fixed backlog of lines is read (2 M lines of ~200 B)
      await runTailBench(2_000_000, (r) => console.log(typeof r === 'string' ? r : formatResult(r)));
      return;
    }
    case 'side-by-side': {
      const chosen = works === undefined ? SIDE_BY_SIDE_WORKS : works.split(',').map((w) => w.trim());
      const unknown = chosen.filter((w) => !(SIDE_BY_SIDE_WORKS as readonly string[]).includes(w));
      if (unknown.length || chosen.length === 0) {
        throw new Error(`--works must list some of ${SIDE_BY_SIDE_WORKS.join(', ')} (got ${works}).`);
      }
      const binary = fluentBitBinary();
      console.log(
        binary
          ? `Each work runs through Tributary, then through Fluent Bit (${binary}), for ${seconds} s of sending.`
          : 'FLUENT_BIT is not set: each work runs through Tributary alone (set FLUENT_BIT to a Fluent Bit binary for the side-by-side).',
      );
      const rows = await runSideBySide(seconds, (row) => console.log(formatRow(row)), chosen as SideBySideWork[]);
      console.log(`\n${formatTable(rows)}`);
      return;
    }
    default:
      throw new Error(
        `Unknown bench suite "${suite}" (known: protocol, forwarder-packed, forwarder-message, aggregator, tail, side-by-side).`,
      );
  }
}
