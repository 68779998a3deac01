/**
 * deploy/systemd/install-node.sh against a release folder of its own
 * (NODE_DIST=file://…): a tarball that matches its SHASUMS256.txt line is
 * installed where the units run node; a tampered or unlisted one installs
 * nothing. Also: the image, the hosts and CI's second leg name one Node.js.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const script = join(root, 'deploy', 'systemd', 'install-node.sh');
const pinned = /^NODE_VERSION=(\d+\.\d+\.\d+)$/m.exec(readFileSync(script, 'utf8'))?.[1] ?? '';
const arch = process.arch; // x64 or arm64, as install-node.sh names uname -m
const tarball = `node-v${pinned}-linux-${arch}.tar.xz`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trb-install-node-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A release folder holding a stand-in tarball (bin/node prints `version`) and SHASUMS256.txt listing `listedSha`. */
function release(version: string, listedSha?: (real: string) => string): string {
  const dist = join(dir, 'dist');
  const stage = join(dir, 'stage', `node-v${pinned}-linux-${arch}`, 'bin');
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'node'), `#!/bin/sh\necho v${version}\n`);
  chmodSync(join(stage, 'node'), 0o755);
  mkdirSync(join(dist, `v${pinned}`), { recursive: true });
  const out = join(dist, `v${pinned}`, tarball);
  const tar = spawnSync('tar', ['-cJf', out, '-C', join(dir, 'stage'), `node-v${pinned}-linux-${arch}`], { encoding: 'utf8' });
  expect(tar.status).toBe(0);
  const real = createHash('sha256').update(readFileSync(out)).digest('hex');
  const lines = [`${'0'.repeat(64)}  node-v${pinned}-linux-other.tar.xz`];
  if (listedSha) lines.push(`${listedSha(real)}  ${tarball}`);
  writeFileSync(join(dist, `v${pinned}`, 'SHASUMS256.txt'), `${lines.join('\n')}\n`);
  return dist;
}

function install(dist: string) {
  const prefix = join(dir, 'prefix');
  const r = spawnSync('sh', [script], {
    env: { ...process.env, NODE_DIST: `file://${dist}`, PREFIX: prefix },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { ...r, node: join(prefix, 'bin', 'node') };
}

test('pins a Node.js 24 release', () => {
  expect(pinned).toMatch(/^24\./);
});

test('a tarball matching its SHASUMS256.txt line is installed under PREFIX, and a second run keeps it', () => {
  const dist = release(pinned, (real) => real);
  const first = install(dist);
  expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: '' });
  expect(spawnSync(first.node, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(`v${pinned}`);
  rmSync(join(dist, `v${pinned}`, tarball)); // already installed: nothing is downloaded
  expect(install(dist).status).toBe(0);
});

test.each([
  ['does not match its SHA-256', (real: string) => real.replace(/^./, (c) => (c === '0' ? '1' : '0'))],
  ['is not listed', undefined],
])('a tarball that %s installs nothing and fails', (reason, listed) => {
  const r = install(release(pinned, listed));
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(reason);
  expect(existsSync(r.node)).toBe(false);
});

test('the units run the node it installs; the image and CI’s second leg are on the same major', () => {
  for (const unit of ['tributary-forwarder.service', 'tributary-aggregator.service']) {
    const text = readFileSync(join(root, 'deploy', 'systemd', unit), 'utf8');
    for (const line of text.split('\n').filter((l) => /^Exec/.test(l))) expect(line).toMatch(/^Exec\w+=\/usr\/local\/bin\/node /);
  }
  const major = pinned.split('.')[0];
  const images = [...readFileSync(join(root, 'deploy', 'Dockerfile'), 'utf8').matchAll(/^FROM node:(\d+)-/gm)].map((m) => m[1]);
  expect(images).toEqual([major, major]);
  expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(new RegExp(`^NODE24_VERSION=${pinned.replace(/\./g, '\\.')}$`, 'm'));
});
