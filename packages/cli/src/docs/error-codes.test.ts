import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorCodeReference, isErrorCode } from '@tributary/core';
import { renderErrorCodes } from './error-codes';

const root = join(__dirname, '..', '..', '..', '..');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === '__fixtures__') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

test('docs/error-codes.md is what the registry says (run `pnpm docs:config` after adding a code)', () => {
  expect(readFileSync(join(root, 'docs', 'error-codes.md'), 'utf8')).toBe(renderErrorCodes());
});

test('every code the product emits is registered, and written through the registry', () => {
  const literals: string[] = [];
  const unregistered: string[] = [];
  for (const file of sources(join(root, 'packages'))) {
    if (file.endsWith(join('core', 'src', 'codes.ts'))) continue;
    const text = readFileSync(file, 'utf8');
    // a string literal is a code written by hand; a code named in a comment (`TRB_X`) must exist too
    for (const m of text.matchAll(/['"](TRB_[A-Z0-9_]*[A-Z0-9])['"]/g)) literals.push(`${file.slice(root.length + 1)}: ${m[1]}`);
    for (const m of text.matchAll(/['"`](TRB_[A-Z0-9_]*[A-Z0-9])['"`]/g)) {
      if (!isErrorCode(m[1])) unregistered.push(`${file.slice(root.length + 1)}: ${m[1]}`);
    }
  }
  expect(unregistered).toEqual([]);
  expect(literals).toEqual([]);
});

test('every registered code is documented with a sentence', () => {
  for (const { code, meaning } of errorCodeReference()) {
    expect(code).toMatch(/^TRB_[A-Z0-9_]+$/);
    expect(meaning.length).toBeGreaterThan(20);
    expect(meaning.trim().endsWith('.') || meaning.trim().endsWith(')')).toBe(true);
  }
});
