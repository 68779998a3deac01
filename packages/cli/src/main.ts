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
    .command('forwarder')
    .description('Run the edge forwarder: forward :24224 and HTTP :9880 inputs, disk buffer, delivery to aggregators')
    .requiredOption('-c, --config <file>', 'YAML config file (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      const { runForwarder } = await import('./commands/forwarder');
      await runForwarder(opts.config);
    });

  program
    .command('aggregator')
    .description('Run an aggregator: forward :24224 input, dedupe, durable log, egress to file / S3 / Firehose')
    .requiredOption('-c, --config <file>', 'YAML config file (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      const { runAggregator } = await import('./commands/aggregator');
      await runAggregator(opts.config);
    });

  program
    .command('check-config')
    .description('Validate a forwarder or aggregator config file and explain every error')
    .argument('<file>', 'YAML config file')
    .option('--role <role>', 'forwarder | aggregator', 'forwarder')
    .action(async (file: string, opts: { role: string }) => {
      const { checkConfig } = await import('./commands/check-config');
      process.exitCode = checkConfig(file, opts.role);
    });

  program
    .command('bench')
    .description('Run benchmarks and print events/s, MB/s, p99 latency and peak RSS')
    .argument('[suite]', 'protocol | forwarder-packed | forwarder-message', 'protocol')
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
