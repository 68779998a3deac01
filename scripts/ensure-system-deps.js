#!/usr/bin/env node
// Installs the system packages the test suite starts for real (redis-server,
// python3-fluent-logger) when they are missing and apt-get can run. On a
// machine where it cannot, it says what is missing and the affected tests
// fail with that message rather than being skipped.
const { execSync, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');

const need = [];
if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status !== 0) need.push('redis-server');
if (!existsSync('/usr/lib/python3/dist-packages/fluent/sender.py')) need.push('python3-fluent-logger');
if (need.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = isRoot ? '' : spawnSync('sh', ['-c', 'command -v sudo'], { stdio: 'ignore' }).status === 0 ? 'sudo ' : null;
if (sudo === null || spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status !== 0) {
  console.error(`[ensure-system-deps] missing ${need.join(', ')} and apt-get is not usable here; install them to run the full suite.`);
  process.exit(0);
}
console.log(`[ensure-system-deps] installing ${need.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execSync(`${sudo}apt-get update -qq`, { stdio: 'inherit', env });
execSync(`${sudo}apt-get install -y -qq ${need.join(' ')}`, { stdio: 'inherit', env });
