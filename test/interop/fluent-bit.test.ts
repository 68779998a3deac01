/**
 * Interop with a real Fluent Bit 4.2.8 (`<repo root>/../shared/fluent-bit/`)
 * as the edge agent in front of a Tributary aggregator, the first step of a
 * migration off Fluent Bit: fluent-logger → Fluent Bit `in_forward` →
 * `out_forward` (require_ack_response, compress gzip: array32 entries, map32
 * options) → aggregator → file sink. Every event becomes a record with its
 * time to the nanosecond and its tag; none goes to the dead letters.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type Started, freePort, readOutput, startRole, tempDir, waitFor } from '@tributary/test-kit';

// biome-ignore lint/suspicious/noExplicitAny: fluent-logger ships loose typings
const fluent: any = require('fluent-logger');

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

async function send(port: number): Promise<void> {
  const sender = fluent.createFluentSender('app', {
    host: '127.0.0.1',
    port,
    timeout: 5,
    internalLogger: { info() {}, error() {} },
    requireAckResponse: true,
    ackResponseTimeout: 10_000,
    eventMode: 'PackedForward',
    flushInterval: 20,
  });
  const errors: Error[] = [];
  sender.on('error', (err: Error) => errors.push(err));
  await Promise.all(
    Array.from(
      { length: N },
      (_, n) =>
        new Promise<void>((resolve, reject) =>
          sender.emit('web', { msg: `event ${n} ü`, n }, new fluent.EventTime(1700000000 + n, n * 1000 + 7), (err?: Error) =>
            err ? reject(err) : resolve(),
          ),
        ),
    ),
  );
  await new Promise<void>((r) => sender.end(null, null, () => r()));
  expect(errors).toEqual([]);
}

// The binary lives beside the repository (../shared); a checkout without it cannot run a real Fluent Bit.
const maybe = existsSync(FLUENT_BIT) ? test : test.skip;

maybe(
  `fluent-logger → Fluent Bit (out_forward, acks, gzip) → aggregator: all ${N} events become records`,
  async () => {
    const dir = tempDir('fluent-bit');
    const [aggPort, metricsPort, fbPort] = [await freePort(), await freePort(), await freePort()];
    const started: Started[] = [];
    let fb: ChildProcess | undefined;
    let fbOut = '';
    try {
      started.push(
        await startRole(
          'aggregator',
          {
            forward: { bind: '127.0.0.1', port: aggPort, udp_heartbeat: false },
            dedupe: { type: 'embedded' },
            log: { path: join(dir, 'log') },
            egress: { max_wait_ms: 50, objects: { age_ms: 200 } },
            sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
            metrics: { port: metricsPort },
            log_level: 'warn',
          },
          dir,
          metricsPort,
        ),
      );
      // every path Fluent Bit writes is under the temp dir: its folder may be read-only
      fb = spawn(
        FLUENT_BIT,
        [
          ...['-f', '1', '-i', 'forward', '-p', 'listen=127.0.0.1', '-p', `port=${fbPort}`],
          ...['-o', 'forward', '-p', 'host=127.0.0.1', '-p', `port=${aggPort}`, '-p', 'require_ack_response=true', '-p', 'compress=gzip'],
          ...['-m', '*'],
        ],
        { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      fb.stdout?.on('data', (d) => {
        fbOut += d;
      });
      fb.stderr?.on('data', (d) => {
        fbOut += d;
      });
      const alive = () => fb?.exitCode === null && fb?.signalCode === null;
      await listening(fbPort, alive);
      await send(fbPort);
      await waitFor(() => readOutput(join(dir, 'out')).lines.length >= N, 60_000, `${N} records from Fluent Bit`);
      const { lines } = readOutput(join(dir, 'out'));
      expect(lines).toHaveLength(N);
      const byN = new Map(lines.map((l) => [l.n as number, l]));
      expect(byN.size).toBe(N);
      for (let n = 0; n < N; n++) {
        const l = byN.get(n);
        const want = `${new Date((1700000000 + n) * 1000).toISOString().slice(0, 19)}.${String(n * 1000 + 7).padStart(9, '0')}Z`;
        if (l?._tag !== 'app.web' || l._time !== want || l.msg !== `event ${n} ü`) expect({ n, line: l }).toEqual({ n, want });
      }
      expect(readdirSync(join(dir, 'out'), { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('_dead_letter'))).toEqual([]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nFluent Bit said:\n${fbOut.slice(-3000)}`);
    } finally {
      fb?.kill('SIGKILL');
      for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  },
  120_000,
);
