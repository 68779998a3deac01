/**
 * Running `tributary bench <suite>` from a test. The bench leads a process
 * group of its own, so one that overruns its limit is SIGKILLed together with
 * every process it started (the group's id is the bench's PID). Every process
 * the bench starts inherits the TMPDIR the test gives it, so a survivor is
 * found by that variable in /proc/<pid>/environ.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { CLI, exited } from '@tributary/test-kit';

/** PIDs of live processes whose environment holds `marker`. */
export function processesWith(marker: string): number[] {
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

/**
 * Processes still running with TMPDIR=`tmpDir`, after up to 2 s for SIGKILLed
 * ones to go. Those found are the bench's (they carry the test's TMPDIR):
 * they are SIGKILLed, and returned so the test fails on them.
 */
export async function survivors(tmpDir: string): Promise<number[]> {
  const marker = `TMPDIR=${tmpDir}`;
  let left = processesWith(marker);
  for (let i = 0; i < 40 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = processesWith(marker);
  }
  for (const pid of left) process.kill(pid, 'SIGKILL');
  return left;
}

/**
 * Starts `tributary bench <args>` leading a process group of its own (the
 * group's id is its PID), its stdout and stderr piped; `output()` is what it
 * printed so far, both together.
 */
export function startBenchCli(args: string[], env: NodeJS.ProcessEnv): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, 'bench', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const collect = (d: Buffer) => {
    out += d;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return Object.assign(child, { output: () => out });
}

/**
 * Runs `tributary bench <args>` (startBenchCli); past `limitMs` the whole
 * group is SIGKILLed. Resolves with its exit code (null when killed) and its
 * stdout and stderr together.
 */
export async function runBenchCli(args: string[], env: NodeJS.ProcessEnv, limitMs: number): Promise<{ code: number | null; out: string }> {
  const child = startBenchCli(args, env);
  const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), limitMs);
  const code = await exited(child);
  clearTimeout(timer);
  return { code, out: child.output() };
}
