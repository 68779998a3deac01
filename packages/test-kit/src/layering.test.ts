/**
 * The package graph shows the architecture: packages import only downward.
 *
 *   4  cli
 *   3  forwarder  aggregator                        roles: wiring only
 *   2  inputs  filters  buffer  log  dedupe  sinks  components
 *   1  forward-protocol                             the wire codec
 *   0  core                                         contracts, errors, config, metrics, logging
 *      test-kit                                     tests only, outside the layers
 *
 * Checked on every package.json (its `dependencies`) and on every product
 * source file (what it imports from the workspace is listed there).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { importSpecifiers, tsFiles } from './__fixtures__/source-scan';

const ROOT = resolve(__dirname, '..', '..', '..');
const PACKAGES = join(ROOT, 'packages');

const LAYERS: Record<string, number> = {
  core: 0,
  'forward-protocol': 1,
  inputs: 2,
  filters: 2,
  buffer: 2,
  log: 2,
  dedupe: 2,
  sinks: 2,
  forwarder: 3,
  aggregator: 3,
  cli: 4,
};
const ROLES = ['forwarder', 'aggregator'];
const TEST_KIT = 'test-kit';

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
}

/** Workspace package folder → its manifest. */
function manifests(): Map<string, Manifest> {
  const out = new Map<string, Manifest>();
  for (const dir of readdirSync(PACKAGES)) {
    const file = join(PACKAGES, dir, 'package.json');
    try {
      out.set(dir, JSON.parse(readFileSync(file, 'utf8')) as Manifest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

const WORKSPACE = /^@tributary\/([a-z-]+)$/;
const workspaceDeps = (m: Manifest) =>
  Object.keys(m.dependencies ?? {}).flatMap((d) => {
    const hit = WORKSPACE.exec(d);
    return hit ? [hit[1]] : [];
  });

/** Every problem with the package graph, as "what: why" lines. */
function graphProblems(packages: Map<string, Manifest>): string[] {
  const problems: string[] = [];
  for (const [dir, m] of packages) {
    if (m.name !== `@tributary/${dir}`) problems.push(`packages/${dir}: named ${m.name}, not @tributary/${dir}`);
    if (dir === TEST_KIT) continue;
    const layer = LAYERS[dir];
    if (layer === undefined) {
      problems.push(`packages/${dir}: has no layer (add it to LAYERS in this test)`);
      continue;
    }
    for (const dep of workspaceDeps(m)) {
      if (dep === TEST_KIT) problems.push(`${dir} -> ${dep}: the test kit is for tests only`);
      else if (!(dep in LAYERS)) problems.push(`${dir} -> ${dep}: not a workspace package with a layer`);
      else if (LAYERS[dep] >= layer) problems.push(`${dir} (layer ${layer}) -> ${dep} (layer ${LAYERS[dep]}): imports must point downward`);
    }
  }
  if (workspaceDeps(packages.get('core') ?? { name: '' }).length) problems.push('core: depends on a workspace package');
  for (const role of ROLES) {
    for (const other of ROLES) {
      if (role !== other && workspaceDeps(packages.get(role) ?? { name: '' }).includes(other)) {
        problems.push(`${role} -> ${other}: a role depends on the other role`);
      }
    }
  }
  return problems;
}

/** A package's product sources: no tests, no test fixtures. */
const productFiles = (dir: string) => tsFiles(dir, ['__fixtures__']).filter((f) => !f.endsWith('.test.ts'));

/** The workspace packages `text` imports (`@tributary/<name>` or a path inside it), once per import. */
const workspaceImports = (text: string) =>
  importSpecifiers(text).flatMap((spec) => {
    const hit = /^@tributary\/([a-z-]+)(?:\/.*)?$/.exec(spec);
    return hit ? [hit[1]] : [];
  });

/** Workspace packages `text` imports that `own` (its package folder) does not list in `dependencies`. */
function unlistedImports(own: string, text: string, m: Manifest): string[] {
  const listed = new Set(workspaceDeps(m));
  return [...new Set(workspaceImports(text))].filter((pkg) => pkg !== own && !listed.has(pkg));
}

test('every workspace dependency points to a strictly lower layer; core has none; no role depends on the other', () => {
  const packages = manifests();
  expect([...packages.keys()].sort()).toEqual([...Object.keys(LAYERS), TEST_KIT].sort());
  expect(graphProblems(packages)).toEqual([]);
});

test('the graph check fails on a planted upward, sideways-role, core or test-kit dependency', () => {
  const packages = manifests();
  const plant = (dir: string, dep: string) => {
    const copy = new Map(packages);
    const m = copy.get(dir) as Manifest;
    copy.set(dir, { ...m, dependencies: { ...m.dependencies, [`@tributary/${dep}`]: 'workspace:*' } });
    return graphProblems(copy);
  };
  expect(plant('log', 'aggregator')).toEqual(['log (layer 2) -> aggregator (layer 3): imports must point downward']);
  expect(plant('sinks', 'log')).toEqual(['sinks (layer 2) -> log (layer 2): imports must point downward']);
  expect(plant('aggregator', 'forwarder')).toEqual([
    'aggregator (layer 3) -> forwarder (layer 3): imports must point downward',
    'aggregator -> forwarder: a role depends on the other role',
  ]);
  expect(plant('core', 'forward-protocol')).toEqual([
    'core (layer 0) -> forward-protocol (layer 1): imports must point downward',
    'core: depends on a workspace package',
  ]);
  expect(plant('buffer', 'test-kit')).toEqual(['buffer -> test-kit: the test kit is for tests only']);
});

test('no product source imports a workspace package its package.json does not list', () => {
  const packages = manifests();
  const offending: string[] = [];
  let scanned = 0;
  let imported = 0;
  for (const [dir, m] of packages) {
    if (dir === TEST_KIT) continue;
    for (const file of productFiles(join(PACKAGES, dir, 'src'))) {
      const text = readFileSync(file, 'utf8');
      scanned++;
      imported += workspaceImports(text).length;
      for (const pkg of unlistedImports(dir, text, m)) offending.push(`${relative(ROOT, file)} imports @tributary/${pkg}`);
    }
  }
  expect(offending).toEqual([]);
  // The scan is not vacuous: it sees the product sources and their workspace imports.
  expect(scanned).toBeGreaterThan(100);
  expect(imported).toBeGreaterThan(100);
});

test('the import check names a planted unlisted import', () => {
  const sinks = manifests().get('sinks') as Manifest;
  const text = "import type { DurableLog } from '@tributary/log';\nimport { Codes } from '@tributary/core';\n";
  expect(unlistedImports('sinks', text, sinks)).toEqual(['log']);
  expect(unlistedImports('sinks', "const x = require('@tributary/aggregator/dist/config');", sinks)).toEqual(['aggregator']);
});

/** Third-party clients that one package wraps, so they can be swapped there alone (docs/architecture.md, "Packages"). */
const WRAPPED_CLIENTS: Record<string, string> = { kafkajs: 'log', ioredis: 'dedupe' };

test('kafkajs is imported only by the log package and ioredis only by the dedupe package (type-only imports too)', () => {
  const offending: string[] = [];
  let wrapped = 0;
  for (const dir of manifests().keys()) {
    if (dir === TEST_KIT) continue;
    for (const file of productFiles(join(PACKAGES, dir, 'src'))) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const client = spec.split('/')[0];
        if (!Object.hasOwn(WRAPPED_CLIENTS, client)) continue;
        if (WRAPPED_CLIENTS[client] === dir) wrapped++;
        else offending.push(`${relative(ROOT, file)} imports ${client}`);
      }
    }
  }
  expect(offending).toEqual([]);
  expect(wrapped).toBeGreaterThanOrEqual(2); // the scan sees the wrappers' own imports
});
