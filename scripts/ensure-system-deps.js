#!/usr/bin/env node
// Installs the system packages the test suite starts for real (redis-server,
// python3-fluent-logger, and Java 17 for the Kafka broker in ../shared/kafka
// when that folder is there) when they are missing and apt-get can run. On a
// machine where it cannot, it says what is missing and the affected tests
// fail with that message rather than being skipped.
const { execSync, spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const need = [];
if (!has('redis-server')) need.push('redis-server');
if (!existsSync('/usr/lib/python3/dist-packages/fluent/sender.py')) need.push('python3-fluent-logger');
if (existsSync(join(__dirname, '..', '..', 'shared', 'kafka', 'start.sh')) && !has('java')) need.push('openjdk-17-jre-headless');
if (need.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = isRoot ? '' : has('sudo') ? 'sudo ' : null;
if (sudo === null || !has('apt-get')) {
  console.error(`[ensure-system-deps] missing ${need.join(', ')} and apt-get is not usable here; install them to run the full suite.`);
  process.exit(0);
}
console.log(`[ensure-system-deps] installing ${need.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Waits for another apt or dpkg (an unattended upgrade, a second CI job) to let go of its lock instead of failing.
const lock = '-o DPkg::Lock::Timeout=600';
execSync(`${sudo}apt-get ${lock} update -qq`, { stdio: 'inherit', env });
execSync(`${sudo}apt-get ${lock} install -y -qq ${need.join(' ')}`, { stdio: 'inherit', env });
