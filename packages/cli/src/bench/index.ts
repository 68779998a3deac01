import { type AggregatorBenchSink, runAggregatorBench } from './aggregator';
import { runForwarderBench } from './forwarder';
import { runProtocolBench } from './protocol';
import { formatResult } from './stats';
import { runTailBench } from './tail';

export async function runBench(suite: string, seconds: number, connections?: number, sink = 'file'): Promise<void> {
  if (connections !== undefined && !(Number.isInteger(connections) && connections > 0)) {
    throw new Error(`--connections must be a positive integer (got ${connections}).`);
  }
  console.log(`# tributary bench ${suite} — node ${process.version}, ${require('node:os').cpus().length} cores`);
  switch (suite) {
    case 'protocol':
      for (const r of runProtocolBench(seconds)) console.log(formatResult(r));
      return;
    case 'forwarder-packed':
      console.log(formatResult(await runForwarderBench('packed', seconds, connections ?? 2)));
      return;
    case 'forwarder-message':
      console.log(formatResult(await runForwarderBench('message', seconds, connections ?? 16)));
      return;
    case 'aggregator': {
      if (sink !== 'file' && sink !== 's3') throw new Error(`--sink must be file or s3 (got ${sink}).`);
      const r = await runAggregatorBench(seconds, connections ?? 2, sink as AggregatorBenchSink);
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
    default:
      throw new Error(`Unknown bench suite "${suite}" (known: protocol, forwarder-packed, forwarder-message, aggregator, tail).`);
  }
}
