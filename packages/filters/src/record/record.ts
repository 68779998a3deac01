/** The record filter's logic; placeholders are parsed once into parts, so an event costs only the lookups. */
import { packPair } from '@tributary/forward-protocol';
import { type Path, deletePath, getPath, parseKey, setPath } from '../record-accessor';
import { asText } from '../regex';
import type { Filter, FilterContext, FilterEvent } from '../spec';
import type { RecordConfig } from './config';

/** A piece of a `set` value: text, or what a placeholder gives for an event (`get` reads a top-level key). */
type Part = string | ((e: FilterEvent, get: (key: string) => unknown) => string);

const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** Parses `${...}` placeholders; throws on an unknown one or an unset variable. */
function compileTemplate(template: string, ctx: Pick<FilterContext, 'hostname' | 'env'>): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push(template.slice(last, m.index));
    last = m.index + m[0].length;
    parts.push(placeholder(m[1], ctx));
  }
  if (last < template.length) parts.push(template.slice(last));
  return parts;
}

function placeholder(name: string, ctx: Pick<FilterContext, 'hostname' | 'env'>): Part {
  if (name === 'hostname') return ctx.hostname;
  if (name === 'tag') return (e) => e.tag;
  if (name === 'time') return (e) => e.timeText();
  const env = /^env\.(\w+)$/.exec(name);
  if (env) {
    const value = ctx.env[env[1]];
    if (value === undefined) throw new Error(`the environment variable ${env[1]} is not set`);
    return value;
  }
  const tagPart = /^tag_parts\[(-?\d+)\]$/.exec(name);
  if (tagPart) {
    const n = Number(tagPart[1]);
    return (e) => {
      const parts = e.tag.split('.');
      return parts[n < 0 ? parts.length + n : n] ?? '';
    };
  }
  const field = /^record\[(?:"([^"]*)"|'([^']*)')\]$/.exec(name);
  if (field) {
    const key = field[1] ?? field[2];
    return (_e, get) => asText(get(key));
  }
  throw new Error(`unknown placeholder \${${name}} (known: hostname, tag, tag_parts[N], time, record["key"], env.NAME)`);
}

/** Problems with a `set` value's placeholders (for check-config). */
export function templateProblems(template: string, env: Readonly<Record<string, string | undefined>>): string[] {
  try {
    compileTemplate(template, { hostname: '', env });
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

function prefixMatcher(patterns: readonly string[]): (key: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (k) => exact.has(k) || prefixes.some((p) => k.startsWith(p));
}

const render = (parts: readonly Part[], e: FilterEvent, get: (key: string) => unknown): string => {
  let text = '';
  for (const p of parts) text += typeof p === 'string' ? p : p(e, get);
  return text;
};

export function createRecord(config: RecordConfig, ctx: FilterContext): Filter {
  const keep = config.keep?.length ? config.keep : null;
  const rename: Array<[Path, Path]> = Object.entries(config.rename ?? {}).map(([from, to]) => [parseKey(from), parseKey(to)]);
  const set: Array<[Path, Part[]]> = Object.entries(config.set ?? {}).map(([k, t]) => [parseKey(k), compileTemplate(t, ctx)]);
  const remove = (config.remove ?? []).map(parseKey);
  const nest = config.nest && { ...config.nest, matches: prefixMatcher(config.nest.keys) };
  const lift = config.lift;
  // top-level keys only, no nest or lift: the record can be changed as bytes (a constant value packed once)
  const topLevel = [...rename.flat(), ...set.map(([p]) => p), ...remove].every((p) => p.length === 1 && typeof p[0] === 'string');
  const rawSet = set.map(([p, parts]) => {
    const key = p[0] as string;
    const constant = parts.every((x) => typeof x === 'string') ? parts.join('') : null;
    return {
      key,
      parts,
      entry: constant === null ? null : { key, value: constant, packed: packPair(key, constant), keyBytes: Buffer.from(key, 'utf8') },
    };
  });
  const applyRaw: Filter['applyRaw'] =
    topLevel && !nest && !lift
      ? (record, event) => {
          if (keep) record.keep(keep);
          for (const [from, to] of rename) record.rename(from[0] as string, to[0] as string);
          for (const s of rawSet) {
            if (s.entry) record.setEntry(s.entry);
            else
              record.set(
                s.key,
                render(s.parts, event, (k) => record.get(k)),
              );
          }
          for (const [k] of remove) record.delete(k as string);
          return true;
        }
      : undefined;
  return {
    changes: true,
    applyRaw,
    apply(event) {
      let r = event.record;
      if (keep) {
        const kept: Record<string, unknown> = {};
        for (const k of keep) if (Object.hasOwn(r, k)) kept[k] = r[k];
        r = kept;
        event.record = r;
      }
      for (const [from, to] of rename) {
        const v = getPath(r, from);
        if (v === undefined) continue;
        deletePath(r, from);
        setPath(r, to, v);
      }
      for (const [path, parts] of set)
        setPath(
          r,
          path,
          render(parts, event, (k) => r[k]),
        );
      for (const path of remove) deletePath(r, path);
      if (nest) {
        const inner: Record<string, unknown> = {};
        let moved = 0;
        for (const k of Object.keys(r)) {
          if (!nest.matches(k)) continue;
          const name = nest.remove_prefix && k.startsWith(nest.remove_prefix) ? k.slice(nest.remove_prefix.length) : k;
          inner[name] = r[k];
          delete r[k];
          moved++;
        }
        if (moved) r[nest.under] = inner;
      }
      if (lift) {
        const inner = r[lift.from];
        if (inner !== null && typeof inner === 'object' && !Array.isArray(inner) && !(inner instanceof Uint8Array)) {
          delete r[lift.from];
          for (const [k, v] of Object.entries(inner)) r[`${lift.add_prefix ?? ''}${k}`] = v;
        }
      }
      return r;
    },
  };
}
