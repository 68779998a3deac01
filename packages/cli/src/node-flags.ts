/**
 * The node flags each role is deployed with (deploy/systemd/tributary-*.service's
 * ExecStart; node-flags.test.ts holds the two together), and the flags a
 * bench starts a role with: TRB_BENCH_NODE_FLAGS, when set, replaces them
 * (split on whitespace; empty: Node's defaults). Outside bench/ so that a
 * test can check them (tests do not import the bench).
 */
export type BenchRole = 'forwarder' | 'aggregator';

/**
 * Node flags of the deployed roles (deploy/systemd/tributary-*.service's
 * ExecStart; node-flags.test.ts holds the two together; why each flag,
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
