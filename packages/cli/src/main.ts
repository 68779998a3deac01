/**
 * The `tributary` command. Commander parses the arguments (subcommands,
 * generated --help, clear errors for unknown options); each subcommand lives in
 * its own module and is loaded only when run.
 */
import { Command } from 'commander';

export function buildProgram(): Command {
  const program = new Command('tributary')
    .description('Log forwarder and aggregator speaking the Fluentd Forward Protocol')
    .version(require('../package.json').version);

  program
    .command('bench')
    .description('Run benchmarks and print events/s, MB/s, p99 latency and peak RSS')
    .argument('[suite]', 'protocol', 'protocol')
    .option('--seconds <n>', 'measuring time per case', '3')
    .action(async (suite: string, opts: { seconds: string }) => {
      const { runBench } = await import('./bench/index');
      await runBench(suite, Number(opts.seconds));
    });

  return program;
}

export function main(argv: string[]): void {
  buildProgram()
    .parseAsync(argv)
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
