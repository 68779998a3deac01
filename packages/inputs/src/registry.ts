/**
 * Every input kind a role can serve. A role's config schema takes its input
 * keys from `inputProperties`, its config type from `InputsConfig`, and
 * builds its inputs with `createInputs`: adding an input is its folder and
 * one line here.
 */
import type { ForwardChunk } from '@tributary/forward-protocol';
import type { FromSchema } from 'json-schema-to-ts';
import { forwardInput } from './forward/spec';
import { httpInput } from './http/spec';
import type { Input, InputContext } from './input';
import { type InputSpec, type KeyDefaults, withDefaults } from './spec';
import { tailInput } from './tail/spec';

export const inputRegistry = [forwardInput, httpInput, tailInput] as const;

type Registered = (typeof inputRegistry)[number];
export type InputType = Registered['type'];
type SchemaOf<T extends InputType> = Extract<Registered, { type: T }>['schema'];

/** The input keys of a role's config schema: `{forward: <schema>, http: <schema>}`. */
export type InputProperties = { readonly [T in InputType]: SchemaOf<T> };

/** The input keys of a role's config, as validated (defaults filled in). */
export type InputsConfig = { readonly [T in InputType]: FromSchema<SchemaOf<T>> };

/** A role's own defaults, per input kind and key. */
export type RoleInputDefaults = { readonly [T in InputType]?: KeyDefaults<SchemaOf<T>> };

/** Every registered input's schema under its config key, with the role's defaults applied. */
export function inputProperties(defaults: RoleInputDefaults = {}): InputProperties {
  const properties: Record<string, object> = {};
  for (const spec of inputRegistry as readonly InputSpec[]) {
    properties[spec.type] = withDefaults(spec.schema, defaults[spec.type as InputType] ?? {});
  }
  return properties as InputProperties;
}

/** What a role gives its inputs: an `InputContext` whose counters are told which input they count. */
export interface InputsContext extends Omit<InputContext, 'onRefused' | 'onAccepted'> {
  onRefused(input: InputType, code: string): void;
  onAccepted?(input: InputType, chunks: ForwardChunk[]): void;
}

/**
 * The inputs `config` asks for, in registry order, none listening yet: every
 * registered kind whose key is present and not `enabled: false`.
 */
export function createInputs(config: Partial<InputsConfig>, ctx: InputsContext): Input[] {
  const inputs: Input[] = [];
  for (const spec of inputRegistry as readonly InputSpec<InputType>[]) {
    const own = config[spec.type] as { enabled?: boolean } | undefined;
    if (own === undefined || own.enabled === false) continue;
    inputs.push(
      spec.create(own, {
        ...ctx,
        onRefused: (code) => ctx.onRefused(spec.type, code),
        onAccepted: ctx.onAccepted && ((chunks) => ctx.onAccepted?.(spec.type, chunks)),
      }),
    );
  }
  return inputs;
}
