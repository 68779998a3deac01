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
    .command('up')
    .description('Run a single-node pipeline on embedded defaults: forward :24224 and HTTP :9880 in, gzip NDJSON files out')
    .option('--data-dir <dir>', 'buffer, log and output directory', './tributary-data')
    .option('--forward-port <port>', 'Forward Protocol port', '24224')
    .option('--http-port <port>', 'HTTP input port', '9880')
    .option('--metrics-port <port>', 'forwarder metrics port (the aggregator uses the next one)', '24231')
    .option('--bind <address>', 'address the inputs listen on', '127.0.0.1')
    .option('--log-level <level>', 'trace | debug | info | warn | error', 'warn')
    .option('--tail <glob...>', 'also follow the files these globs match (tag tail.<path>, read from their head)')
    .action(
      async (o: {
        dataDir: string;
        forwardPort: string;
        httpPort: string;
        metricsPort: string;
        bind: string;
        logLevel: string;
        tail?: string[];
      }) => {
        (await import('./commands/shutdown')).catchSignalsEarly();
        const { runUp } = await import('./commands/up');
        const port = (name: string, v: string) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number (0-65535), got "${v}".`);
          return n;
        };
        await runUp({
          dataDir: o.dataDir,
          forwardPort: port('forward-port', o.forwardPort),
          httpPort: port('http-port', o.httpPort),
          metricsPort: port('metrics-port', o.metricsPort),
          bind: o.bind,
          logLevel: o.logLevel,
          tail: o.tail ?? [],
        });
      },
    );

  program
    .command('forwarder')
    .description('Run the edge forwarder: forward :24224 and HTTP :9880 inputs, disk buffer, delivery to aggregators')
    .requiredOption('-c, --config <file>', 'YAML config file (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      (await import('./commands/shutdown')).catchSignalsEarly();
      const { runForwarder } = await import('./commands/forwarder');
      await runForwarder(opts.config);
    });

  program
    .command('aggregator')
    .description('Run an aggregator: forward :24224 input, dedupe, durable log, egress to file / S3 / Firehose')
    .requiredOption('-c, --config <file>', 'YAML config file (see docs/configuration.md)')
    .action(async (opts: { config: string }) => {
      (await import('./commands/shutdown')).catchSignalsEarly();
      const { runAggregator } = await import('./commands/aggregator');
      await runAggregator(opts.config);
    });

  program
    .command('check-config')
    .description('Validate a forwarder or aggregator config file and explain every error')
    .argument('<file>', 'YAML config file')
    .option('--role <role>', 'forwarder | aggregator', 'forwarder')
    .option('--with <file>', 'a config of the other role: also checks the timeouts between the two hops')
    .action(async (file: string, opts: { role: string; with?: string }) => {
      const { checkConfig } = await import('./commands/check-config');
      process.exitCode = checkConfig(file, opts.role, opts.with);
    });

  program
    .command('bench')
    .description('Run benchmarks and print events/s, MB/s, p99 latency and peak RSS')
    .argument(
      '[suite]',
      'protocol | forwarder-packed | forwarder-message | forwarder-message-ack | aggregator | tail | side-by-side (with Fluent Bit when FLUENT_BIT names its binary)',
      'protocol',
    )
    .option('--seconds <n>', 'every suite but tail: measuring time per case (default 3)')
    .option(
      '--connections <n>',
      'forwarder-* and aggregator: sender connections (default: forwarder-packed 2, forwarder-message(-ack) 16, aggregator 2)',
    )
    .option('--sink <sink>', 'aggregator: where events are delivered, file | s3 (s3rver) (default file)')
    .option('--log <log>', 'aggregator: the durable log, embedded | kafka (a new topic on KAFKA_BROKERS) (default embedded)')
    .option('--compress <codec>', 'aggregator: none | gzip (the sender sends CompressedPackedForward) (default none)')
    .option('--filters <set>', 'forwarder-*: filters the forwarder runs, none | grep | grep-record | mask (default none)')
    .option('--lines <n>', 'tail: lines written per case (default 2000000)')
    .option('--works <list>', 'side-by-side: comma-separated works to run, of packed, message, message-ack, aggregator (default: all)')
    .option(
      '--encoder-threads <n>',
      "aggregator, and side-by-side's aggregator work: egress.encoder_threads (default: the aggregator's auto)",
    )
    .action(
      async (
        suite: string,
        opts: {
          seconds?: string;
          connections?: string;
          sink?: string;
          log?: string;
          compress?: string;
          filters?: string;
          works?: string;
          encoderThreads?: string;
          lines?: string;
        },
      ) => {
        const { runBench } = await import('./bench/index');
        // absent stays absent: runBench refuses an option the suite does not take, and applies the defaults
        const number = (v?: string) => (v === undefined ? undefined : Number(v));
        const { sink, log, compress, filters } = opts;
        await runBench(suite, {
          seconds: number(opts.seconds),
          connections: number(opts.connections),
          sink,
          log,
          compress,
          filters,
          works: opts.works?.split(',').map((w) => w.trim()),
          encoderThreads: number(opts.encoderThreads),
          lines: number(opts.lines),
        });
      },
    );

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
