/**
 * What can be checked of deploy/ and docker-compose.yml without Docker or a
 * cloud account: every Tributary config there passes the real schema, the
 * compose file references files that exist, the systemd units give the drain
 * time to finish, and the Terraform is formatted (when terraform is on PATH).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aggregatorConfigSpec } from '@tributary/aggregator';
import { loadConfigFile } from '@tributary/core';
import { forwarderConfigSpec } from '@tributary/forwarder';
import { parse } from 'yaml';

const root = join(__dirname, '..', '..');

test.each([
  ['deploy/compose/aggregator-1.yaml', 'aggregator'],
  ['deploy/compose/aggregator-2.yaml', 'aggregator'],
  ['deploy/compose/forwarder.yaml', 'forwarder'],
  ['deploy/systemd/forwarder.yaml', 'forwarder'],
])('%s is a valid %s config', (file, role) => {
  const spec = role === 'aggregator' ? aggregatorConfigSpec : forwarderConfigSpec;
  expect(() => loadConfigFile(spec as never, join(root, file))).not.toThrow();
});

test('docker-compose.yml: every mounted file exists, every role is present, start-up order by health', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'));
  const services = compose.services as Record<string, { volumes?: string[]; depends_on?: unknown; command?: string[] }>;
  for (const name of ['redis', 'kafka', 'localstack', 'aggregator-1', 'aggregator-2', 'haproxy', 'forwarder', 'app'])
    expect(services[name]).toBeDefined();
  for (const [name, svc] of Object.entries(services)) {
    for (const v of svc.volumes ?? []) {
      const src = v.split(':')[0];
      if (src.startsWith('./')) expect({ name, src, exists: existsSync(join(root, src)) }).toEqual({ name, src, exists: true });
    }
  }
  expect(JSON.stringify(services.haproxy.depends_on)).toContain('service_healthy');
});

test('systemd units stop after the drain grace period, as a dedicated user, with a state directory', () => {
  const grace = (forwarderConfigSpec.schema as { properties: { shutdown_grace_ms: { default: number } } }).properties.shutdown_grace_ms
    .default;
  for (const unit of ['tributary-forwarder.service', 'tributary-aggregator.service']) {
    const text = readFileSync(join(root, 'deploy', 'systemd', unit), 'utf8');
    const stop = Number(/^TimeoutStopSec=(\d+)/m.exec(text)?.[1]);
    expect(stop * 1000).toBeGreaterThan(grace);
    expect(text).toMatch(/^User=tributary$/m);
    expect(text).toMatch(/^StateDirectory=tributary$/m);
    expect(text).toMatch(/^Restart=always$/m);
  }
});

const terraform = spawnSync('sh', ['-c', 'command -v terraform'], { encoding: 'utf8' }).stdout.trim();
// Runs only where terraform is installed (it is not an npm or Debian package); `terraform validate` needs the AWS provider download and is not run.
(terraform ? test : test.skip)('terraform fmt -check', () => {
  const r = spawnSync(terraform, ['fmt', '-check', '-recursive', join(root, 'deploy', 'terraform')], { encoding: 'utf8' });
  expect(r.stdout).toBe(''); // files needing formatting are listed on stdout
  expect(r.status).toBe(0);
});
