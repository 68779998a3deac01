/**
 * CI smoke run of `tributary bench side-by-side`: one second of sending per
 * work, through Tributary and, when ../shared/fluent-bit is there, through
 * Fluent Bit. It prints the table with the ratios and fails only when the
 * bench is broken: a non-zero exit, a work that delivered nothing, or a
 * process the bench started still running afterwards. Rates are never
 * asserted (the machine may be slow or shared).
 *
 * Every process the bench starts inherits TMPDIR = this test's directory, so
 * a survivor is found by that variable in /proc/<pid>/environ.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { CLI, exited, tempDir } from '@tributary/test-kit';

const FLUENT_BIT = resolve(__dirname, '..', '..', '..', 'shared', 'fluent-bit', 'bin', 'fluent-bit');
/** Longest the bench may take before the test calls it stuck (each work drains within its own bounded wait). */
const BENCH_LIMIT_MS = 170_000;
/** Longest one run of the `--works` test may take (one work, or a refused name). */
const WORKS_LIMIT_MS = 55_000;

/** PIDs of live processes whose environment holds `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** Runs `tributary bench side-by-side` with `args`, SIGKILLed after `limitMs`: its exit code, and its stdout and stderr together. */
async function runSideBySideCli(args: string[], env: NodeJS.ProcessEnv, limitMs: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, 'bench', 'side-by-side', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => {
    out += d;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const code = await exited(child);
  clearTimeout(timer);
  return { code, out };
}

/** The rows of the table the bench prints. */
const tableRows = (out: string) => out.split('\n').filter((l) => /^\| (edge|aggregator)/.test(l));

test(
  'the side-by-side bench runs every work, delivers events on each side and leaves no process behind',
  async () => {
    const dir = tempDir('side-by-side');
    const withFluentBit = existsSync(FLUENT_BIT);
    const env = { ...process.env, TMPDIR: dir, FLUENT_BIT: withFluentBit ? FLUENT_BIT : '' }; // empty: Tributary alone
    const { code, out } = await runSideBySideCli(['--seconds', '1'], env, BENCH_LIMIT_MS);
    console.log(out);

    const marker = `TMPDIR=${dir}`;
    let left = processesWith(marker);
    for (let i = 0; i < 40 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50)); // a SIGKILLed child may take a moment to go
      left = processesWith(marker);
    }
    for (const pid of left) process.kill(pid, 'SIGKILL'); // ours (they carry this test's TMPDIR): stop them, then fail
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
    const run = (works: string) => runSideBySideCli(['--seconds', '1', '--works', works], env, WORKS_LIMIT_MS);
    try {
      const one = await run('message-ack');
      expect(one.code).toBe(0);
      const rows = tableRows(one.out);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toContain('ack per message');
      expect(rows[0]).not.toContain('INCOMPLETE');
      expect(rows[0]).not.toContain('DUPLICATES');
      const bad = await run('packed,nope');
      expect(bad.code).not.toBe(0);
      expect(bad.out).toContain('--works takes packed, message, message-ack, aggregator (got nope)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  2 * WORKS_LIMIT_MS + 10_000,
);
