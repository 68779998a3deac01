/** Reads every gzip NDJSON object a file sink wrote under one or more directories. */
import { type Dirent, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export function readOutput(...dirs: string[]): { lines: Array<Record<string, unknown>>; files: string[] } {
  const files: string[] = [];
  const walk = (d: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    // The listing's own types: a sink's temp file renamed meanwhile is never looked at again.
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.json.gz')) files.push(join(d, e.name));
    }
  };
  for (const d of dirs) walk(d);
  const lines = files.flatMap((f) =>
    gunzipSync(readFileSync(f))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
  return { lines, files };
}

/** Counts per `_id`: how many ids, and which appear more than once. */
export function countIds(lines: Array<Record<string, unknown>>): { ids: number; duplicates: string[] } {
  const seen = new Map<string, number>();
  for (const l of lines) seen.set(l._id as string, (seen.get(l._id as string) ?? 0) + 1);
  return { ids: seen.size, duplicates: [...seen].filter(([, n]) => n > 1).map(([id]) => id) };
}
