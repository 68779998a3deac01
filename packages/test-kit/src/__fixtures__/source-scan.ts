/**
 * What the import-boundary and layering tests read from the repository: the
 * TypeScript files under a folder, and the module specifiers a file imports.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every `.ts` file under `dir`, skipping node_modules, dist and the folders named in `skip`. */
export function tsFiles(dir: string, skip: readonly string[] = [], out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || skip.includes(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, skip, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)'([^']+)'/gm;

/** The specifiers of `text`'s static, type-only, side-effect, dynamic and require imports, as written. */
export function importSpecifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map(([, spec]) => spec);
}
