/**
 * Interop with a real Fluent Bit 4.2.8 (`<repo root>/../shared/fluent-bit/`)
 * as the edge agent in front of a Tributary aggregator, the first step of a
 * migration off Fluent Bit: fluent-logger → Fluent Bit `in_forward` →
 * `out_forward` (require_ack_response, compress gzip: array32 entries, map32
 * options) → aggregator → file sink. Every event becomes a record with its
 * time to the nanosecond and its tag; none goes to the dead letters. With
 * Retain_Metadata_In_Forward_Mode, events that carry metadata keep it
 * (`[[time, metadata], record]` on the wire, `_metadata` in the line).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type Started, freePort, readOutput, startRole, tempDir, waitFor } from '@tributary/test-kit';
import { fileSinkAggregator } from './file-sink-aggregator';
import { sendWithFluentLogger } from './fluent-logger-sender';

const FLUENT_BIT = join(__dirname, '..', '..', '..', 'shared', 'fluent-bit', 'bin', 'fluent-bit');
const N = 5000;

/** Resolves once something accepts connections on the port (at most 15 s). */
async function listening(port: number, isAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!isAlive()) throw new Error('Fluent Bit exited before it listened.');
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Nothing listened on ${port} within 15 s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function send(port: number): Promise<void> {
  return sendWithFluentLogger(port, N, { ackResponseTimeout: 10_000, eventMode: 'PackedForward', flushInterval: 20 });
}

// The binary lives beside the repository (../shared); a checkout without it cannot run a real Fluent Bit.
const maybe = existsSync(FLUENT_BIT) ? test : test.skip;

interface Pipeline {
  dir: string;
  fbPort: number;
  fbOutput: () => string;
  stop: () => void;
}

/**
 * An aggregator (embedded log, file sink) and a Fluent Bit in front of it:
 * `in_forward` on a free port → `out_forward` with acks, gzip and `extra`
 * output properties. Every path either writes is under a temp dir.
 */
async function startPipeline(name: string, extra: string[] = []): Promise<Pipeline> {
  const dir = tempDir(name);
  const [aggPort, metricsPort, fbPort] = [await freePort(), await freePort(), await freePort()];
  const started: Started[] = [];
  let fb: ChildProcess | undefined;
  let out = '';
  const stop = () => {
    fb?.kill('SIGKILL');
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    started.push(await startRole('aggregator', fileSinkAggregator(dir, aggPort, metricsPort), dir, metricsPort));
    fb = spawn(
      FLUENT_BIT,
      [
        ...['-f', '1', '-i', 'forward', '-p', 'listen=127.0.0.1', '-p', `port=${fbPort}`],
        ...['-o', 'forward', '-p', 'host=127.0.0.1', '-p', `port=${aggPort}`, '-p', 'require_ack_response=true', '-p', 'compress=gzip'],
        ...extra.flatMap((p) => ['-p', p]),
        ...['-m', '*'],
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    fb.stdout?.on('data', (d) => {
      out += d;
    });
    fb.stderr?.on('data', (d) => {
      out += d;
    });
    await listening(fbPort, () => fb?.exitCode === null && fb?.signalCode === null);
  } catch (err) {
    stop();
    throw new Error(`${(err as Error).message}\nFluent Bit said:\n${out.slice(-3000)}`);
  }
  return { dir, fbPort, fbOutput: () => out, stop };
}

/** Runs `body`, adding what Fluent Bit printed to a failure, and stops the pipeline. */
async function withPipeline(p: Pipeline, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    throw new Error(`${(err as Error).message}\nFluent Bit said:\n${p.fbOutput().slice(-3000)}`);
  } finally {
    p.stop();
  }
}

function deadLetterFiles(out: string): string[] {
  return readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('_dead_letter'));
}

maybe(
  `fluent-logger → Fluent Bit (out_forward, acks, gzip) → aggregator: all ${N} events become records`,
  async () => {
    const p = await startPipeline('fluent-bit');
    await withPipeline(p, async () => {
      await send(p.fbPort);
      const out = join(p.dir, 'out');
      await waitFor(() => readOutput(out).lines.length >= N, 60_000, `${N} records from Fluent Bit`);
      const { lines } = readOutput(out);
      expect(lines).toHaveLength(N);
      const byN = new Map(lines.map((l) => [l.n as number, l]));
      expect(byN.size).toBe(N);
      for (let n = 0; n < N; n++) {
        const l = byN.get(n);
        const want = `${new Date((1700000000 + n) * 1000).toISOString().slice(0, 19)}.${String(n * 1000 + 7).padStart(9, '0')}Z`;
        if (l?._tag !== 'app.web' || l._time !== want || l.msg !== `event ${n} ü`) expect({ n, line: l }).toEqual({ n, want });
      }
      expect(deadLetterFiles(out)).toEqual([]);
    });
  },
  120_000,
);

const METADATA_CAPTURE = join(__dirname, '..', '..', '..', 'shared', 'fixtures', 'forward', 'fluentbit-metadata.bin');
const maybeMeta = existsSync(FLUENT_BIT) && existsSync(METADATA_CAPTURE) ? test : test.skip;

maybeMeta(
  'events with metadata through Fluent Bit (Retain_Metadata_In_Forward_Mode) keep it under _metadata',
  async () => {
    const p = await startPipeline('fluent-bit-meta', ['retain_metadata_in_forward_mode=true']);
    await withPipeline(p, async () => {
      // Fluent Bit's own [[time, metadata], record] entries, as captured, into its in_forward
      await new Promise<void>((resolve, reject) => {
        const s = connect(p.fbPort, '127.0.0.1', () => s.end(readFileSync(METADATA_CAPTURE)));
        s.on('error', reject);
        s.on('close', () => resolve());
      });
      const out = join(p.dir, 'out');
      await waitFor(() => readOutput(out).lines.length >= 3, 30_000, '3 records with metadata');
      const lines = readOutput(out).lines.sort((a, b) => (a.n as number) - (b.n as number));
      expect(lines.map(({ _id, ...l }) => l)).toEqual(
        [1, 2, 3].map((n) => ({
          msg: `hello ${n}`,
          n,
          _time: `2023-11-14T22:13:2${n}.${String(n * 100000001).padStart(9, '0')}Z`,
          _tag: 'fb.meta',
          ...(n < 3 ? { _metadata: { meta: `m${n}` } } : {}),
        })),
      );
      expect(deadLetterFiles(out)).toEqual([]);
    });
  },
  120_000,
);
