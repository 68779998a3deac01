import { runAggregatorBench } from './aggregator';
import { runForwarderBench } from './forwarder';
import { runProtocolBench } from './protocol';
import { formatResult } from './stats';

export async function runBench(suite: string, seconds: number, connections?: number): Promise<void> {
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
    case 'aggregator':
      console.log(formatResult(await runAggregatorBench(seconds, connections ?? 16)));
      return;
    default:
      throw new Error(`Unknown bench suite "${suite}" (known: protocol, forwarder-packed, forwarder-message, aggregator).`);
  }
}
