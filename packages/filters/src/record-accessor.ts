/**
 * Keys as Fluentd's record accessor writes them: `$.a.b`, `$['a']['b.c']`,
 * `$.list[0]` reach into nested maps and arrays; a key without `$` is one
 * top-level key, dots and all (`kubernetes.pod` is that key, not a path).
 */
import type { RawRecord } from './raw-record';

export type Path = readonly (string | number)[];

/** The path a key names; throws an Error describing a malformed accessor. */
export function parseKey(key: string): Path {
  if (!key.startsWith('$')) return [key];
  const path: (string | number)[] = [];
  let i = 1;
  while (i < key.length) {
    if (key[i] === '.') {
      const m = /^[^.[\]]+/.exec(key.slice(i + 1));
      if (!m) throw new Error(`"${key}" has an empty name after "." at ${i}`);
      path.push(m[0]);
      i += 1 + m[0].length;
    } else if (key[i] === '[') {
      const m = /^\[(?:(\d+)|'([^']*)'|"([^"]*)")\]/.exec(key.slice(i));
      if (!m) throw new Error(`"${key}" has a malformed [...] at ${i} (write [0], ['name'] or ["name"])`);
      path.push(m[1] !== undefined ? Number(m[1]) : (m[2] ?? m[3]));
      i += m[0].length;
    } else throw new Error(`"${key}" must continue with "." or "[" at ${i}`);
  }
  if (!path.length) throw new Error(`"${key}" names no key`);
  return path;
}

function child(value: unknown, step: string | number): unknown {
  if (typeof step === 'number') return Array.isArray(value) ? value[step] : undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return Object.hasOwn(value, step) ? (value as Record<string, unknown>)[step] : undefined;
}

export function getPath(record: Record<string, unknown>, path: Path): unknown {
  let v: unknown = record;
  for (const step of path) {
    v = child(v, step);
    if (v === undefined) return undefined;
  }
  return v;
}

/** The value at `path` of a record kept as bytes (its top-level value decoded). */
export function getRawPath(record: RawRecord, path: Path): unknown {
  let v = record.get(String(path[0]));
  for (let i = 1; i < path.length && v !== undefined; i++) v = child(v, path[i]);
  return v;
}

/** Sets the value, making the maps on the way where they are missing (a non-map on the way is replaced by one). */
export function setPath(record: Record<string, unknown>, path: Path, value: unknown): void {
  let v: Record<string, unknown> | unknown[] = record;
  for (let i = 0; i < path.length - 1; i++) {
    const step = path[i];
    let next = child(v, step);
    if (next === null || typeof next !== 'object') {
      next = {};
      (v as Record<string | number, unknown>)[step] = next;
    }
    v = next as Record<string, unknown>;
  }
  (v as Record<string | number, unknown>)[path[path.length - 1]] = value;
}

/** Removes the key; returns whether it was there. */
export function deletePath(record: Record<string, unknown>, path: Path): boolean {
  const parent = path.length === 1 ? record : getPath(record, path.slice(0, -1));
  const last = path[path.length - 1];
  if (parent === null || typeof parent !== 'object') return false;
  if (Array.isArray(parent)) {
    if (typeof last !== 'number' || last >= parent.length) return false;
    parent.splice(last, 1);
    return true;
  }
  if (!Object.hasOwn(parent, last)) return false;
  delete (parent as Record<string | number, unknown>)[last];
  return true;
}
