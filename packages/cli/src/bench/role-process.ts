/**
 * How a bench starts a Tributary role (`tributary forwarder|aggregator
 * --config`) as a process of its own: with the node flags that role is
 * deployed with, the one place the benches write them, and how it stops it.
 *
 * TRB_BENCH_NODE_FLAGS, when set, replaces the deployed flags of every role
 * a bench starts (split on whitespace; empty: Node's defaults). To add a
 * flag, give the whole list: `TRB_BENCH_NODE_FLAGS='--max-semi-space-size=4
 * --initial-old-space-size=64 --trace-gc' tributary bench aggregator`.
 * TRB_BENCH_PROF=<dir> adds `--cpu-prof` into <dir>.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { stopProcess } from './loopback';

export type BenchRole = 'forwarder' | 'aggregator';

/**
 * Node flags of the deployed roles (deploy/systemd/tributary-*.service's
 * ExecStart; role-process.test.ts holds the two together; why each flag,
 * docs/operations.md). Both: a 4 MB young generation (most of a role's
 * garbage is ArrayBuffers V8 collects on external-memory pressure, not on a
 * full nursery; the default 16 MB semi-spaces were ~20–40 MB of RSS for no CPU
 * saved), and a 64 MB floor under the old generation's limit (V8 counts
 * ArrayBuffers grown since the last full GC against its headroom, and
 * without the floor started a full GC every ~35 ms on a 13 MB heap). The
 * forwarder, an edge agent: a 128 MB old-generation ceiling, so V8 collects
 * promoted garbage before it piles up (~70 MB of heap under a full buffer).
 */
export const DEPLOYED_NODE_FLAGS: Readonly<Record<BenchRole, readonly string[]>> = {
  forwarder: ['--max-semi-space-size=4', '--max-old-space-size=128', '--initial-old-space-size=64'],
  aggregator: ['--max-semi-space-size=4', '--initial-old-space-size=64'],
};

/** The node flags a bench starts `role` with: TRB_BENCH_NODE_FLAGS (of `env`) when set, else the deployed ones. */
export function benchNodeFlags(role: BenchRole, env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env.TRB_BENCH_NODE_FLAGS;
  return override === undefined ? [...DEPLOYED_NODE_FLAGS[role]] : override.split(/\s+/).filter(Boolean);
}

/** Spawns `tributary <role> --config <config>` from this checkout, its output on the bench's. */
export function spawnRole(role: BenchRole, config: string): ChildProcess {
  const prof = process.env.TRB_BENCH_PROF;
  return spawn(
    process.execPath,
    [
      ...benchNodeFlags(role),
      ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
      join(__dirname, '..', '..', 'bin', 'tributary.js'),
      role,
      '--config',
      config,
    ],
    { stdio: 'inherit' },
  );
}

/** Stops a role spawnRole started and resolves once it exited: SIGINT under TRB_BENCH_PROF (a profile is written on a clean exit), else SIGKILL. */
export function stopRole(child: ChildProcess): Promise<void> {
  return stopProcess(child, process.env.TRB_BENCH_PROF ? 'SIGINT' : 'SIGKILL');
}
