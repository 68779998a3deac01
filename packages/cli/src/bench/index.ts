import { runAggregatorBench } from './aggregator';
import { runForwarderBench } from './forwarder';
import { runProtocolBench } from './protocol';
import { formatResult } from './stats';

export async function runBench(suite: string, seconds: number): Promise<void> {
  console.log(`# tributary bench ${suite} — node ${process.version}, ${require('node:os').cpus().length} cores`);
  switch (suite) {
    case 'protocol':
      for (const r of runProtocolBench(seconds)) console.log(formatResult(r));
      return;
    case 'forwarder-packed':
      console.log(formatResult(await runForwarderBench('packed', seconds)));
      return;
    case 'forwarder-message':
      console.log(formatResult(await runForwarderBench('message', seconds)));
      return;
    case 'aggregator':
      console.log(formatResult(await runAggregatorBench(seconds)));
      return;
    default:
      throw new Error(`Unknown bench suite "${suite}" (known: protocol, forwarder-packed, forwarder-message, aggregator).`);
  }
}
