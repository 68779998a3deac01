/**
 * For tests that run Tributary as a separate process: a temp directory, start
 * a role and wait until /healthz answers, peak RSS from /proc, and waiting for
 * an exit. A test stops only the processes it started, by their ChildProcess.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The CLI entry point of this checkout (run with `node`; it loads the built dist). */
export const CLI = join(__dirname, '..', '..', 'cli', 'bin', 'tributary.js');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `trb-${prefix}-`));
}

/** Peak resident set size of a live process, in MB (Linux VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Resolves once http://127.0.0.1:<port>/healthz answers 200 (at most 15 s). */
export async function waitHealthy(port: number, what: string, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!isAlive()) throw new Error(`${what} exited before it became healthy.`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not become healthy within 15 s.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Starts `tributary <role> --config` and resolves once its ops port answers /healthz (bounded wait). */
export async function startRole(role: string, config: Record<string, unknown>, dir: string, metricsPort: number): Promise<Started> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${role}-${Date.now()}.yaml`);
  writeFileSync(file, stringify(config));
  const child = spawn(process.execPath, [CLI, role, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  try {
    await waitHealthy(metricsPort, role, () => child.exitCode === null);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return { child, output: () => out };
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

/**
 * Starts `tributary up` with `args` and resolves once it says it is up (at
 * most 20 s); `output()` is everything it printed so far. It leads its own
 * process group: `up` stops (TRB_ORPHANED) when the group leader that
 * launched it is gone, and the test runner's group leader is whatever shell
 * started the suite, which may exit before the suite does. It still stops
 * when its parent, the test worker, goes.
 */
export async function startUp(args: string[]): Promise<ChildProcess & { output: () => string }> {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 20_000;
  while (!out.includes('Tributary is up') && child.exitCode === null) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tributary up did not start within 20 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (child.exitCode !== null) throw new Error(`tributary up exited:\n${out}`);
  return Object.assign(child, { output: () => out });
}
