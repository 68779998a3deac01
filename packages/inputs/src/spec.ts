/**
 * What an input kind gives a role: its config schema (the role's config key
 * is the kind's `type`), the config type derived from that schema, and its
 * factory. A role's own defaults (the aggregator listens on 0.0.0.0 and
 * serves no HTTP unless asked) are overrides of a kind's defaults, applied
 * with `withDefaults`; the role never spreads and patches a schema itself.
 */
import type { ComponentSpec } from '@tributary/core';
import type { Input, InputContext } from './input';

/** An input kind's config schema: an object of named keys, each with its default and description. */
export type InputSchema = {
  readonly type: 'object';
  readonly description: string;
  readonly properties: { readonly [key: string]: object };
};

export interface InputSpec<T extends string = string, S extends InputSchema = InputSchema, C = unknown>
  extends ComponentSpec<C, InputContext, Input> {
  /** The kind, its metrics' `input` label and the role's config key for it (`forward:`, `http:`). */
  readonly type: T;
  readonly schema: S;
  /** The input, not listening yet: `start` listens. */
  create(config: C, ctx: InputContext): Input;
}

/** A role's own default (and the description that explains it) for some keys of a schema. */
export type KeyDefaults<S extends InputSchema> = {
  readonly [K in keyof S['properties']]?: { readonly default?: unknown; readonly description?: string };
};

/**
 * `schema` with some keys' defaults (and descriptions) replaced, key order
 * kept (the configuration reference follows it). Typed as `schema` itself:
 * a default changes which value is filled in, never the config type.
 */
export function withDefaults<S extends InputSchema>(schema: S, defaults: KeyDefaults<S>): S {
  const properties: Record<string, object> = { ...schema.properties };
  for (const [key, override] of Object.entries(defaults)) {
    if (!(key in properties)) throw new Error(`withDefaults: the schema has no key "${key}".`);
    properties[key] = { ...properties[key], ...override };
  }
  return { ...schema, properties } as S;
}
