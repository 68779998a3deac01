/**
 * Fluent Bit as the peer in the side-by-side and tail benches: started from
 * the binary FLUENT_BIT names, with a classic config file and every path it writes
 * (storage, output files) under the bench's temporary directory, listening on
 * loopback only.
 *
 *   edge        in_forward (storage.type filesystem) -> out_forward, require_ack_response
 *   aggregator  in_forward (storage.type filesystem) -> out_file (one line per event, no gzip, no sync)
 *   tail        in_tail (read_from_head, a position DB, storage.type filesystem) -> out_forward, require_ack_response
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, stopProcess, track } from './loopback';

/** What each side does, printed beside the figures. */
export const FLUENT_BIT_EDGE = 'in_forward storage.type filesystem, flush 0.2 s -> out_forward require_ack_response';
export const FLUENT_BIT_FILES = 'in_forward storage.type filesystem, flush 0.2 s -> out_file (no gzip, no dedupe, no sync)';
export const FLUENT_BIT_TAIL =
  'in_tail read_from_head, position DB, storage.type filesystem, flush 0.2 s -> out_forward require_ack_response';

/** The Fluent Bit binary from FLUENT_BIT, or undefined when it is not set. */
export function fluentBitBinary(): string | undefined {
  return process.env.FLUENT_BIT || undefined;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:<port> (at most 15 s). */
async function waitListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('Fluent Bit exited before it listened.');
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`Fluent Bit did not listen on port ${port} within 15 s.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A classic-config section: `[name]` and one `key value` line per property. */
function section(name: string, props: Record<string, string>): string {
  return `[${name}]\n${Object.entries(props)
    .map(([k, v]) => `    ${k} ${v}`)
    .join('\n')}\n`;
}

/**
 * Writes a classic config of `input` and `output` (storage, and every other
 * path it writes, under `dir`) and starts Fluent Bit on it; resolves once the
 * process is spawned. `parsers` are [PARSER] sections, written to a parsers
 * file of their own (the classic config does not take them inline).
 */
async function spawnFluentBit(
  binary: string,
  dir: string,
  input: Record<string, string>,
  output: Record<string, string>,
  parsers: Record<string, string>[] = [],
): Promise<ChildProcess> {
  const service: Record<string, string> = { flush: '0.2', grace: '1', log_level: 'warn', 'storage.path': join(dir, 'fluent-bit-storage') };
  if (parsers.length) {
    service.parsers_file = join(dir, 'fluent-bit-parsers.conf');
    writeFileSync(service.parsers_file, parsers.map((p) => section('PARSER', p)).join('\n'));
  }
  const config = join(dir, 'fluent-bit.conf');
  writeFileSync(config, [section('SERVICE', service), section('INPUT', input), section('OUTPUT', { match: '*', ...output })].join('\n'));
  const child = track(spawn(binary, ['-q', '-c', config], { stdio: ['ignore', 'inherit', 'inherit'] }));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`Fluent Bit (${binary}) did not start: ${err.message}`)));
  });
  return child;
}

/**
 * Starts Fluent Bit with in_forward on a free port in front of `output` (a
 * classic-config [OUTPUT] body); resolves once it listens.
 */
async function startFluentBit(binary: string, dir: string, output: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const input = { name: 'forward', listen: '127.0.0.1', port: String(port), 'storage.type': 'filesystem' };
  const child = await spawnFluentBit(binary, dir, input, output);
  try {
    await waitListening(port, child);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return { child, port };
}

/** out_forward to the bench's acking receiver, an ack awaited per chunk. */
const toReceiver = (receiverPort: number) => ({
  name: 'forward',
  host: '127.0.0.1',
  port: String(receiverPort),
  require_ack_response: 'true',
});

/** Fluent Bit as an edge agent: forward in, disk storage, forward out with acks to the receiver. */
export function startFluentBitEdge(binary: string, dir: string, receiverPort: number): Promise<{ child: ChildProcess; port: number }> {
  return startFluentBit(binary, dir, toReceiver(receiverPort));
}

/** Fluent Bit as an aggregator into files under `outDir` (one file per tag, one line per event). */
export function startFluentBitFiles(binary: string, dir: string, outDir: string): Promise<{ child: ChildProcess; port: number }> {
  mkdirSync(outDir, { recursive: true }); // out_file does not create its directory
  return startFluentBit(binary, dir, { name: 'file', path: outDir });
}

/**
 * Fluent Bit tailing the files `path` matches from their head (a position DB
 * under `dir`, disk storage, the `json` parser or none) into out_forward with
 * acks to the receiver; resolves once it is spawned (tail listens on nothing).
 */
export function startFluentBitTail(
  binary: string,
  dir: string,
  path: string,
  parser: 'none' | 'json',
  receiverPort: number,
): Promise<ChildProcess> {
  const input = {
    name: 'tail',
    path,
    tag: 'tail.*',
    read_from_head: 'on',
    db: join(dir, 'fluent-bit-tail.db'),
    'storage.type': 'filesystem',
    ...(parser === 'json' ? { parser: 'json' } : {}),
  };
  const parsers = parser === 'json' ? [{ name: 'json', format: 'json' }] : [];
  return spawnFluentBit(binary, dir, input, toReceiver(receiverPort), parsers);
}

/**
 * Counts the lines written so far to the files in a directory, reading only
 * what was appended since the last call.
 */
export class LineCounter {
  private readonly offsets = new Map<string, number>();
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private lines = 0;

  constructor(private readonly dir: string) {}

  count(): number {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return this.lines; // not created yet
    }
    for (const name of names) {
      const path = join(this.dir, name);
      let offset = this.offsets.get(name) ?? 0;
      if (statSync(path).size <= offset) continue;
      const fd = openSync(path, 'r');
      try {
        for (let n = readSync(fd, this.buf, 0, this.buf.length, offset); n > 0; n = readSync(fd, this.buf, 0, this.buf.length, offset)) {
          // Count only whole lines: stop at the last newline, the rest is read again next time.
          const last = this.buf.lastIndexOf(10, n - 1);
          if (last < 0) break;
          for (let i = this.buf.indexOf(10, 0); i >= 0 && i <= last; i = this.buf.indexOf(10, i + 1)) this.lines++;
          offset += last + 1;
        }
      } finally {
        closeSync(fd);
      }
      this.offsets.set(name, offset);
    }
    return this.lines;
  }
}
