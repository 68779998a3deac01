/**
 * Tail crash test: a writer appends numbered lines to a file and rotates it
 * (rename to app.log.N) every ROTATE_EVERY lines, while the forwarder tailing it is
 * killed with SIGKILL and restarted several times on the same buffer and
 * position journal. Afterwards every number reached the receiver exactly
 * once: the tail input neither lost nor repeated a line.
 *
 * The forward hop to the receiver is at-least-once on its own (a chunk in
 * flight at the kill is sent again after the restart under the same chunk
 * id, which the aggregators' dedupe removes), so each forwarder chunk id is
 * counted once here, as an aggregator would.
 */
import { appendFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeEntries } from '@tributary/forward-protocol';
import { type Started, exited, freePort, startRecordingServer, startRole, tempDir, waitFor } from '@tributary/test-kit';

const TOTAL = 60_000;
const ROTATE_EVERY = 7_000;
const KILLS = 4;

test('kill -9 while a rotating file is tailed, restart, repeat: every line delivered exactly once', async () => {
  // each forwarder chunk counted at its first delivery, as the aggregators' dedupe does
  const chunkIds = new Set<string>();
  const numbers: number[] = [];
  let resent = 0;
  const receiver = await startRecordingServer({
    consume: async (chunks) => {
      for (const c of chunks) {
        const events = decodeEntries(c.entries);
        if (c.chunkId !== undefined && chunkIds.has(c.chunkId)) {
          resent += events.length;
          continue;
        }
        if (c.chunkId !== undefined) chunkIds.add(c.chunkId);
        for (const e of events) numbers.push(Number(/^n=(\d+) /.exec(String(e.record.message))?.[1]));
      }
    },
  });
  const dir = tempDir('tail-crash');
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const file = join(logs, 'app.log');
  appendFileSync(file, '');
  const [forwardPort, metricsPort] = [await freePort(), await freePort()];
  const config = {
    forward: { port: forwardPort, udp_heartbeat: false },
    http: { enabled: false },
    tail: {
      path: [`${file}*`], // the rotated files too: a file rotated away while the forwarder is down is still read, once
      read_from_head: true,
      refresh_interval_ms: 100,
      poll_interval_ms: 20,
      rotate_wait_ms: 1000,
      positions_path: join(dir, 'positions.journal'),
    },
    buffer: { path: join(dir, 'buffer'), flush_interval_ms: 200, chunk_limit_bytes: 128 * 1024 },
    output: { servers: [{ host: '127.0.0.1', port: receiver.port }], ack_timeout_ms: 5000, retry: { initial_ms: 50, max_ms: 500 } },
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
  const started: Started[] = [];
  let written = 0;
  let writing = true;
  // the writer: 100 lines every 5 ms, rotating by rename every ROTATE_EVERY lines
  const writer = (async () => {
    let rotations = 0;
    while (written < TOTAL) {
      let block = '';
      for (let i = 0; i < 100 && written < TOTAL; i++) block += `n=${written++} ${'x'.repeat(120)}\n`;
      appendFileSync(file, block);
      if (written % ROTATE_EVERY === 0) {
        renameSync(file, `${file}.${++rotations}`);
        appendFileSync(file, '');
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    writing = false;
  })();
  try {
    started.push(await startRole('forwarder', config, dir, metricsPort));
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 600)));
      const victim = started[started.length - 1];
      victim.child.kill('SIGKILL');
      await exited(victim.child);
      started.push(await startRole('forwarder', config, dir, metricsPort));
    }
    await writer;
    expect(writing).toBe(false);
    await waitFor(() => new Set(numbers).size >= TOTAL, 90_000, 'every line at the receiver');
    await new Promise((r) => setTimeout(r, 1500)); // anything repeated would arrive by now
    const counts = new Map<number, number>();
    for (const n of numbers) counts.set(n, (counts.get(n) ?? 0) + 1);
    const missing = Array.from({ length: TOTAL }, (_, i) => i).filter((n) => !counts.has(n));
    const repeated = [...counts].filter(([, c]) => c > 1).map(([n]) => n);
    expect(missing).toEqual([]);
    expect(repeated).toEqual([]);
    expect(numbers.length).toBe(TOTAL);
    console.log(
      `tail crash test: ${TOTAL} lines in ${Math.floor(TOTAL / ROTATE_EVERY)} rotations, ${KILLS} kill -9s: each line once; the forward hop resent ${resent} events under their chunk ids`,
    );
    const last = started[started.length - 1];
    last.child.kill('SIGTERM');
    expect(await exited(last.child)).toBe(0);
  } finally {
    writing = false;
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await receiver.server.close(100);
    rmSync(dir, { recursive: true, force: true });
  }
}, 180_000);
