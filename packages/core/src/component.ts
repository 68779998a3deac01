/**
 * One shape for every pluggable part (input, sink, log, dedupe store,
 * buffer): a spec gives its config schema and its factory, and a registry
 * is a plain list of specs. The role's config schema, its config type, the
 * factory a role calls and the configuration reference all derive from that
 * list, so a new part is its folder and one registry line (Vector's
 * component configs, Fluent Bit's plugin `config_map`).
 */
import { ConfigError } from './errors';

/** A part's config schema: a JSON Schema object with a description for the reference. */
export type ComponentSchema = { readonly type: 'object'; readonly description: string } & { readonly [key: string]: unknown };

/**
 * One kind of part. `schema` describes the part's whole config object (with
 * `type` as a `const` where a list holds several kinds); `Config` is derived
 * from it (json-schema-to-ts `FromSchema`), never written by hand. `create`
 * maps that config to the part's options: role start functions only wire.
 */
export interface ComponentSpec<Config = unknown, Ctx = unknown, Part = unknown> {
  readonly type: string;
  readonly schema: ComponentSchema;
  create(config: Config, ctx: Ctx): Part | Promise<Part>;
}

/** The spec of `type` in `registry`; a ConfigError naming the known ones when it is not there (a config that skipped validation). */
export function findSpec<S extends { readonly type: string }>(registry: readonly S[], type: string, kind: string): S {
  const spec = registry.find((s) => s.type === type);
  if (!spec) throw new ConfigError(`No ${kind} type "${type}" is registered (known: ${registry.map((s) => s.type).join(', ')}).`);
  return spec;
}

/**
 * Builds the part a config names. The spec is found by the config's own
 * `type`, so a spec is never handed another type's config: this is the one
 * place where the union of configs meets the list of specs, and the only
 * cast of it (TypeScript cannot correlate a union member with its spec).
 */
export function createPart<S extends ComponentSpec<never, never, unknown>>(
  registry: readonly S[],
  config: { readonly type: string },
  ctx: Parameters<S['create']>[1],
  kind: string,
): ReturnType<S['create']> {
  const spec = findSpec(registry, config.type, kind) as unknown as ComponentSpec<unknown, unknown, unknown>;
  return spec.create(config, ctx) as ReturnType<S['create']>;
}

/**
 * The schema of one config object whose `type` picks a spec: an ajv
 * discriminator, so a key is checked only against its own type's keys and a
 * problem is reported once, with its path. An absent object or `type` is
 * `defaultType` (ajv fills the parent's defaults before the discriminator
 * picks a branch; every branch requires `type`, which is what the
 * discriminator needs).
 */
export function discriminatedSchema(
  registry: readonly ComponentSpec[],
  o: { description: string; defaultType: string; typeDescription: string },
) {
  return {
    type: 'object',
    description: o.description,
    required: [],
    default: {},
    properties: { type: { enum: registry.map((s) => s.type), default: o.defaultType, description: o.typeDescription } },
    discriminator: { propertyName: 'type' },
    oneOf: registry.map((s) => s.schema),
  } as const;
}
