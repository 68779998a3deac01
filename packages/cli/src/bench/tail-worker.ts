/**
 * Tail bench worker (a child process, so its peak RSS is its own): the tail
 * input reads the files in argv[2] from their head into a disk buffer whose
 * sealed chunks are taken and acked at once (an output that never lags), and
 * reports, once every line is in the buffer, how long that took, the CPU
 * seconds it used and its peak RSS. argv: <dir> <parser> <lines expected>.
 */
import { join } from 'node:path';
import { createBuffer } from '@tributary/buffer';
import { bufferConfigSpec } from '@tributary/buffer';
import { partConfigSpec, silentLogger, validateConfig } from '@tributary/core';
import { type TailInputConfig, createTailInput, tailInputSchema } from '@tributary/inputs';
import { Registry } from 'prom-client';

async function main(): Promise<void> {
  const [dir, parser, expected] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  const { buffer: bufferConfig } = validateConfig(bufferConfigSpec, {
    buffer: { type: 'disk', path: join(dir, 'buffer'), max_bytes: 4 * 1024 ** 3, chunk_limit_bytes: 1024 * 1024, flush_interval_ms: 200 },
  });
  const counter = { inc: () => undefined };
  const buffer = await createBuffer(bufferConfig, { logger: silentLogger, metrics: { droppedEvents: counter, bufferIoErrors: counter } });
  const drain = () => {
    for (let c = buffer.take(); c; c = buffer.take()) buffer.ack(c).catch((err: Error) => process.send?.({ error: err.message }));
  };
  buffer.onReady(drain);
  const { tail } = validateConfig(partConfigSpec<{ tail: TailInputConfig }>('tail', tailInputSchema), {
    tail: {
      path: [join(dir, 'logs', '*.log')],
      read_from_head: true,
      parser: { type: parser },
      positions_path: join(dir, 'positions.journal'),
    },
  });
  const registry = new Registry();
  let events = 0;
  const input = createTailInput(tail, {
    logger: silentLogger,
    onRefused: () => undefined,
    registry,
    chunkLimitBytes: bufferConfig.chunk_limit_bytes,
    skipAcked: (chunks) => buffer.skipAcked(chunks),
    isFull: () => buffer.isFull(),
    onAccepted: (chunks) => {
      for (const c of chunks) events += c.count;
    },
  });
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  await input.start((chunks) => buffer.append(chunks));
  const deadline = Date.now() + 600_000;
  while (events < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const rss = /VmHWM:\s+(\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'));
  await input.stop(0);
  await buffer.close();
  process.send?.({ events, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMb: rss ? Number(rss[1]) / 1024 : Number.NaN });
}

main().catch((err: Error) => {
  process.send?.({ error: err.message });
  process.exitCode = 1;
});
