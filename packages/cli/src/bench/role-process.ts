/**
 * How a bench starts a Tributary role (`tributary forwarder|aggregator
 * --config`) as a process of its own, with the node flags that role is
 * deployed with (../node-flags.ts, the one place they are written), and how
 * it stops it.
 *
 * TRB_BENCH_NODE_FLAGS, when set, replaces the deployed flags of every role
 * a bench starts (split on whitespace; empty: Node's defaults). To add a
 * flag, give the whole list: `TRB_BENCH_NODE_FLAGS='--max-semi-space-size=4
 * --initial-old-space-size=64 --trace-gc' tributary bench aggregator`.
 * TRB_BENCH_PROF=<dir> adds `--cpu-prof` into <dir>.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { type BenchRole, benchNodeFlags } from '../node-flags';
import { stopProcess, track } from './loopback';

/** Spawns `tributary <role> --config <config>` from this checkout, its output on the bench's. */
export function spawnRole(role: BenchRole, config: string): ChildProcess {
  const prof = process.env.TRB_BENCH_PROF;
  return track(
    spawn(
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
    ),
  );
}

/** Stops a role spawnRole started and resolves once it exited: SIGINT under TRB_BENCH_PROF (a profile is written on a clean exit), else SIGKILL. */
export function stopRole(child: ChildProcess): Promise<void> {
  return stopProcess(child, process.env.TRB_BENCH_PROF ? 'SIGINT' : 'SIGKILL');
}
