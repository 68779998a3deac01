/**
 * The line between product and test code, checked on every import in the
 * repository: tests take their helpers from this kit, never from the CLI's
 * bench, and no product source imports the kit or anything under test/.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { importSpecifiers, tsFiles } from './__fixtures__/source-scan';

const ROOT = resolve(__dirname, '..', '..', '..');
const BENCH = join(ROOT, 'packages', 'cli', 'src', 'bench');
const KIT = join(ROOT, 'packages', 'test-kit');
const TESTS = join(ROOT, 'test');

/** Every module a file imports, relative specifiers resolved to absolute paths. */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  return importSpecifiers(text).map((spec) => (spec.startsWith('.') ? resolve(dirname(file), spec) : spec));
}

const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
const isTestCode = (f: string) => within(f, TESTS) || within(f, KIT) || f.endsWith('.test.ts') || f.includes('/__fixtures__/');

const packageFiles = readdirSync(join(ROOT, 'packages')).flatMap((p) => tsFiles(join(ROOT, 'packages', p, 'src')));
const testFiles = [...tsFiles(TESTS), ...packageFiles.filter(isTestCode)];
const productFiles = packageFiles.filter((f) => !isTestCode(f));

const show = (pairs: Array<[string, string]>) => pairs.map(([f, m]) => `${relative(ROOT, f)} imports ${relative(ROOT, m) || m}`);

test('the import scanner sees static, dynamic and require imports, resolving relative ones', () => {
  const file = join(ROOT, 'test', 'x', 'y.test.ts');
  const text = [
    "import { a } from '../../packages/cli/src/bench/loopback';",
    "import type { B } from '@tributary/core';",
    "import '../side-effect';",
    "const c = require('s3rver');",
    "const d = await import('./d');",
  ].join('\n');
  expect(importsOf(file, text)).toEqual([
    join(BENCH, 'loopback'),
    '@tributary/core',
    join(TESTS, 'side-effect'),
    's3rver',
    join(TESTS, 'x', 'd'),
  ]);
});

test('no test imports the CLI bench: its helpers live in @tributary/test-kit', () => {
  const offending = testFiles.flatMap((f) => importsOf(f).flatMap((m): Array<[string, string]> => (within(m, BENCH) ? [[f, m]] : [])));
  expect(show(offending)).toEqual([]);
  // The scan is not vacuous: the tests that use the kit are seen importing it.
  const kitUsers = testFiles.filter((f) => importsOf(f).includes('@tributary/test-kit'));
  expect(kitUsers.length).toBeGreaterThanOrEqual(20);
});

test('no product source imports the test kit or anything under test/', () => {
  expect(productFiles.length).toBeGreaterThan(50);
  const offending = productFiles.flatMap((f) =>
    importsOf(f).flatMap(
      (m): Array<[string, string]> =>
        m === '@tributary/test-kit' || m.startsWith('@tributary/test-kit/') || within(m, TESTS) || within(m, KIT) ? [[f, m]] : [],
    ),
  );
  expect(show(offending)).toEqual([]);
});

test('no product package lists the test kit as a runtime dependency', () => {
  const dependents = readdirSync(join(ROOT, 'packages')).filter((p) => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    return pkg.dependencies?.['@tributary/test-kit'] !== undefined;
  });
  expect(dependents).toEqual([]);
});
