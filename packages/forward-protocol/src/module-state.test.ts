/**
 * The protocol library keeps no mutable state at module level (issue 12):
 * state lives with whoever owns it (a decoder's scan, a connection's tag
 * cache), so two connections can never see each other's. Only immutable
 * tables and stateless codec instances are declared at the top of a file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const files = readdirSync(__dirname).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

/** Top-level declarations of `src`: statements that start at column 0. */
function topLevel(src: string): string[] {
  return src.split('\n').filter((line) => /^(export\s+)?(let|var|const)\s/.test(line));
}

test('the library has source files to scan', () => {
  expect(files).toEqual(expect.arrayContaining(['msgpack-scan.ts', 'decoder.ts', 'admission.ts', 'request.ts', 'coalescer.ts']));
});

test.each(files)('%s declares no top-level let or var', (file) => {
  const offending = topLevel(readFileSync(join(__dirname, file), 'utf8')).filter((line) => /^(export\s+)?(let|var)\s/.test(line));
  expect(offending).toEqual([]);
});

/** Names of top-level `const` object or array literals of `src` that are not `as const` (frozen ones start with a call). */
function mutableLiterals(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/^(?:export\s+)?const\s+(\w+)\s*(?::[^=\n]+)?=\s*([{[])(.*)$/gm)) {
    const open = m[2];
    const closing = open === '{' ? '}' : ']';
    // one line (`= { a: 1 };`), or up to the line that closes it at column 0
    const rest = src.slice((m.index ?? 0) + m[0].length);
    const tail = m[3].trimEnd().endsWith(';') ? m[3] : (rest.match(new RegExp(`\n\\${closing}(.*)$`, 'm'))?.[1] ?? '');
    if (!/as const;\s*$/.test(tail)) out.push(m[1]);
  }
  return out;
}

test.each(files)('%s declares no top-level object or array literal that is not `as const`', (file) => {
  expect(mutableLiterals(readFileSync(join(__dirname, file), 'utf8'))).toEqual([]);
});

test('the scan catches what it is meant to catch', () => {
  expect(topLevel('let a = 1;\nexport let b = 2;\n  let inner = 3;\nconst c = 4;')).toEqual([
    'let a = 1;',
    'export let b = 2;',
    'const c = 4;',
  ]);
  // the module objects this library had (msgpack-scan.ts's scanHint, scanCount) and the tables it keeps
  const src = [
    'export const scanHint = { need: 0, pos: 0, remaining: 1 };',
    'const list: number[] = [];',
    'export const Codes = {',
    '  A: 1,',
    '} as const;',
    'export const Frozen = Object.freeze({ a: 1 });',
    'export const Pair = [1, 2] as const;',
    'const nested = {',
    '  a: { b: 1 },',
    '};',
  ].join('\n');
  expect(mutableLiterals(src)).toEqual(['scanHint', 'list', 'nested']);
});
