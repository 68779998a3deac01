import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchRole, DEPLOYED_NODE_FLAGS, benchNodeFlags } from './node-flags';

/** The node flags of a systemd unit's ExecStart: what sits between `node` and the script. */
function unitFlags(role: BenchRole): string[] {
  const unit = readFileSync(join(__dirname, '..', '..', '..', 'deploy', 'systemd', `tributary-${role}.service`), 'utf8');
  const exec = /^ExecStart=\S+\/node (.*?) \S+\/tributary\.js /m.exec(unit);
  if (!exec) throw new Error(`No ExecStart running node in tributary-${role}.service.`);
  return exec[1].split(/\s+/);
}

test.each(['forwarder', 'aggregator'] as const)('the bench starts the %s with the flags its systemd unit runs it with', (role) => {
  expect(DEPLOYED_NODE_FLAGS[role]).toEqual(unitFlags(role));
});

test('without TRB_BENCH_NODE_FLAGS every role gets its deployed flags', () => {
  expect(benchNodeFlags('forwarder', {})).toEqual(DEPLOYED_NODE_FLAGS.forwarder);
  expect(benchNodeFlags('aggregator', {})).toEqual(DEPLOYED_NODE_FLAGS.aggregator);
});

test('TRB_BENCH_NODE_FLAGS replaces the deployed flags of every role; empty gives none', () => {
  const env = { TRB_BENCH_NODE_FLAGS: ' --max-semi-space-size=16  --trace-gc ' };
  expect(benchNodeFlags('forwarder', env)).toEqual(['--max-semi-space-size=16', '--trace-gc']);
  expect(benchNodeFlags('aggregator', env)).toEqual(['--max-semi-space-size=16', '--trace-gc']);
  expect(benchNodeFlags('forwarder', { TRB_BENCH_NODE_FLAGS: '' })).toEqual([]);
  expect(benchNodeFlags('aggregator', { TRB_BENCH_NODE_FLAGS: '' })).toEqual([]);
});
