/**
 * `tributary up`: the whole pipeline on one machine with embedded defaults —
 * no Redis, Kafka or AWS. Forwarder (forward :24224, HTTP :9880, disk buffer)
 * → aggregator (loopback forward port, embedded dedupe, embedded log) → file
 * sink under <data-dir>/out as gzip NDJSON in the Hive layout.
 *
 * SIGTERM/SIGINT stops the forwarder first (it flushes to the aggregator and
 * keeps the rest on disk), then the aggregator; a restart on the same
 * data dir picks up where it left. So does the death of what launched it
 * (watchOrphaned): the README's `npx … pnpm exec tributary up` does not pass a
 * SIGTERM on to this process, and an orphaned `up` would hold its ports.
 */
import { join, resolve } from 'node:path';
import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { Codes, createLogger, validateConfig } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import type { Counter } from 'prom-client';
import { drainOnSignals, exitOnUnhandled, watchOrphaned } from './shutdown';

export interface UpOptions {
  dataDir: string;
  forwardPort: number;
  httpPort: number;
  metricsPort: number;
  bind: string;
  logLevel: string;
  /** Globs of files to follow (`--tail`); none: no tail input. */
  tail: string[];
}

async function total(counter: Counter<string>): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}

export async function runUp(opts: UpOptions): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  const out = join(dataDir, 'out');
  const logger = createLogger('tributary', opts.logLevel);
  exitOnUnhandled(logger);
  const aggregator = await Aggregator.start(
    validateConfig(aggregatorConfigSpec, {
      node_id: 'local',
      forward: { bind: '127.0.0.1', port: 0, udp_heartbeat: false },
      dedupe: { type: 'embedded' },
      log: { type: 'embedded', path: join(dataDir, 'log') },
      // a laptop wants to see its events soon: close objects after 1 s once caught up (servers default to 2 s)
      egress: { max_wait_ms: 200, objects: { age_ms: 1000 }, routes: [{ match: '**', sinks: ['file'] }] },
      sinks: [{ name: 'file', type: 'file', path: out }],
      metrics: { bind: opts.bind, port: opts.metricsPort === 0 ? 0 : opts.metricsPort + 1 },
      log_level: opts.logLevel,
    }),
    logger.child({ role: 'aggregator' }),
  );
  const forwarder = await Forwarder.start(
    validateConfig(forwarderConfigSpec, {
      forward: { bind: opts.bind, port: opts.forwardPort },
      http: { bind: opts.bind, port: opts.httpPort },
      ...(opts.tail.length
        ? { tail: { path: opts.tail, read_from_head: true, positions_path: join(dataDir, 'tail-positions.journal') } }
        : {}),
      buffer: { type: 'disk', path: join(dataDir, 'buffer'), flush_interval_ms: 200 },
      output: { servers: [{ host: '127.0.0.1', port: aggregator.ports.forward }] },
      metrics: { bind: opts.bind, port: opts.metricsPort },
      log_level: opts.logLevel,
    }),
    logger.child({ role: 'forwarder' }),
  );
  const p = forwarder.ports;
  process.stdout.write(
    [
      'Tributary is up (single node, embedded log and dedupe).',
      `  send logs:  forward  ${opts.bind}:${p.forward}   (fluent-logger, Fluentd/Fluent Bit out_forward, Docker fluentd driver)`,
      `              http     http://${opts.bind}:${p.http}/<tag>   e.g. curl -d '{"msg":"hi"}' -H 'content-type: application/json' http://${opts.bind}:${p.http}/app.test`,
      ...(opts.tail.length
        ? [`  tailing:    ${opts.tail.join(' ')}   (tag tail.<path>; positions in ${join(dataDir, 'tail-positions.journal')})`]
        : []),
      `  output:     ${out}/<tag>/dt=YYYY-MM-DD/hour=HH/*.json.gz   (gzip NDJSON with _id, _time, _tag)`,
      `  metrics:    http://${opts.bind}:${p.metrics}/metrics (forwarder), http://${opts.bind}:${aggregator.ports.metrics}/metrics (aggregator)`,
      '  stop:       Ctrl-C (SIGINT) or SIGTERM; unsent events stay in the data dir for the next start',
      '',
    ].join('\n'),
  );

  const tty = process.stdout.isTTY === true;
  let last = '';
  const progress = setInterval(
    async () => {
      const inEvents = await total(forwarder.metrics.eventsIn);
      const written = await total(aggregator.metrics.eventsOut);
      const buffered = forwarder.buffer.stats();
      const line = `events in ${inEvents.toLocaleString('en-US')} · written ${written.toLocaleString('en-US')} · buffered ${buffered.events.toLocaleString('en-US')} events (${(buffered.bytes / 1e6).toFixed(1)} MB)`;
      if (line === last) return;
      last = line;
      if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else process.stdout.write(`${line}\n`);
    },
    tty ? 1000 : 10_000,
  );
  progress.unref();

  drainOnSignals(logger, async (signal) => {
    clearInterval(progress);
    process.stdout.write(`${tty ? '\n' : ''}Received ${signal}; flushing and stopping.\n`);
    await forwarder.stop();
    await aggregator.stop();
    process.stdout.write('Stopped cleanly.\n');
  });
  watchOrphaned((why) => {
    logger.warn(
      { code: Codes.TRB_ORPHANED },
      `The command that started tributary up is gone (${why}); draining and stopping as on SIGTERM.`,
    );
    process.kill(process.pid, 'SIGTERM');
  });
}
