/**
 * CI smoke run of `tributary bench side-by-side`: one second of sending per
 * work, through Tributary and, when ../shared/fluent-bit is there, through
 * Fluent Bit. It prints the table with the ratios and fails only when the
 * bench is broken: a non-zero exit, a work that delivered nothing, or a
 * process the bench started still running afterwards. Rates are never
 * asserted (the machine may be slow or shared).
 *
 * The bench runs in a process group of its own (bench-cli.ts): past its
 * limit the whole group is killed, so no forwarder, receiver or Fluent Bit it
 * started outlives it, and each test then checks that none is left.
 */
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { exited, tempDir } from '@tributary/test-kit';
import { processesWith, runBenchCli, startBenchCli, survivors } from './bench-cli';

const FLUENT_BIT = resolve(__dirname, '..', '..', '..', 'shared', 'fluent-bit', 'bin', 'fluent-bit');
/**
 * Longest the whole bench may take before the test calls it stuck. Each work
 * drains within its own bounded wait, but their sum (60 s per edge run, 180 s
 * per files run) is far longer than a working run takes (1–2 min on a loaded
 * machine): past this the bench is taken as stuck and its group is killed.
 */
const BENCH_LIMIT_MS = 170_000;
/**
 * Longest one run of the `--works` test may take (one edge work through
 * Tributary alone, or a refused name). Above the bench's own bound for it, so
 * a slow drain is reported by the bench, not cut by the test: up to 15 s for
 * the forwarder to become healthy, 1 s of sending, up to 60 s for an ack, up
 * to 60 s of drain (forwarder.ts's DRAIN_LIMIT_MS).
 */
const WORKS_LIMIT_MS = 150_000;

/** The rows of the table the bench prints. */
const tableRows = (out: string) => out.split('\n').filter((l) => /^\| (edge|aggregator)/.test(l));

test(
  'the side-by-side bench runs every work, delivers events on each side and leaves no process behind',
  async () => {
    const dir = tempDir('side-by-side');
    const withFluentBit = existsSync(FLUENT_BIT);
    const env = { ...process.env, TMPDIR: dir, FLUENT_BIT: withFluentBit ? FLUENT_BIT : '' }; // empty: Tributary alone
    const { code, out } = await runBenchCli(['side-by-side', '--seconds', '1'], env, BENCH_LIMIT_MS);
    console.log(out);

    const left = await survivors(dir);
    rmSync(dir, { recursive: true, force: true });

    expect(code).toBe(0);
    expect(left).toEqual([]);
    expect(out).toContain(withFluentBit ? 'then through Fluent Bit' : 'FLUENT_BIT is not set');
    const rows = tableRows(out);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const [, , tributary, fluentBit, ratio] = row.split('|').map((c) => c.trim());
      expect(Number(tributary.split(' ')[0].replace(/,/g, ''))).toBeGreaterThan(0);
      if (withFluentBit) {
        expect(Number(fluentBit.split(' ')[0].replace(/,/g, ''))).toBeGreaterThan(0);
        expect(Number(ratio.replace('×', ''))).toBeGreaterThan(0);
      } else {
        expect(fluentBit).toBe('not run');
      }
    }
  },
  BENCH_LIMIT_MS + 10_000,
);

test(
  '--works runs only the works it names, and refuses a name it does not know',
  async () => {
    const dir = tempDir('side-by-side-works');
    const env = { ...process.env, TMPDIR: dir, FLUENT_BIT: '' };
    const run = (works: string) => runBenchCli(['side-by-side', '--seconds', '1', '--works', works], env, WORKS_LIMIT_MS);
    try {
      const one = await run('message-ack');
      expect(await survivors(dir)).toEqual([]);
      expect(one.code).toBe(0);
      const rows = tableRows(one.out);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toContain('ack per message');
      expect(rows[0]).not.toContain('INCOMPLETE');
      expect(rows[0]).not.toContain('DUPLICATES');
      const bad = await run('packed,nope');
      expect(await survivors(dir)).toEqual([]);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toContain('--works takes packed, message, message-ack, aggregator (got nope)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  2 * WORKS_LIMIT_MS + 10_000,
);

test('a SIGTERM to the bench alone (not its group) stops every process it started, and it exits 143', async () => {
  const dir = tempDir('side-by-side-sigterm');
  const env = { ...process.env, TMPDIR: dir, FLUENT_BIT: '' };
  const marker = `TMPDIR=${dir}`;
  // it leads its own group (startBenchCli), so the finally below can clean up if this fails
  const bench = startBenchCli(['side-by-side', '--seconds', '60', '--works', 'message'], env);
  try {
    // the bench, its receiver and its forwarder running (at most 30 s)
    for (let i = 0; i < 300 && processesWith(marker).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const started = processesWith(marker).filter((pid) => pid !== bench.pid);
    expect(started.length).toBeGreaterThanOrEqual(2);
    process.kill(bench.pid as number, 'SIGTERM');
    expect(await exited(bench)).toBe(143);
    expect(bench.output()).toMatch(/bench: SIGTERM: stopped [2-9] process\(es\) it had started\./);
    expect(await survivors(dir)).toEqual([]);
  } finally {
    try {
      process.kill(-(bench.pid as number), 'SIGKILL');
    } catch {
      // the group is gone: nothing to clean up
    }
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
