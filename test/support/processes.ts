/**
 * Test support for tests that run Tributary as a separate process: free
 * ports, a temp config file, start and wait until /healthz answers, peak RSS
 * from /proc, and stopping only the processes a test started, by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, peakRssMb, waitHealthy } from '../../packages/cli/src/bench/local-servers';

export { freePort, peakRssMb };

export const CLI = join(__dirname, '..', '..', 'packages', 'cli', 'bin', 'tributary.js');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `trb-${prefix}-`));
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
