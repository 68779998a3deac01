/**
 * Schema-first configuration: one JSON Schema per component, validated once
 * with ajv (unknown keys rejected, defaults filled in, every problem reported
 * with its key path), then deep-frozen. A bad config never starts half a node.
 */
import { readFileSync } from 'node:fs';
import Ajv, { type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors';

const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  discriminator: true,
});

/** A JSON Pointer (`/sinks/0/bucket`) as a config key path (`sinks[0].bucket`), the way the reference names keys. */
export function keyPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

function describe(err: ErrorObject): string {
  const path = err.instancePath ? keyPath(err.instancePath) : '(top level)';
  switch (err.keyword) {
    case 'additionalProperties':
      return `${path === '(top level)' ? '' : `${path}.`}${err.params.additionalProperty}: unknown key`;
    case 'enum':
      return `${path}: must be one of ${(err.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'required':
      return `${path === '(top level)' ? '' : `${path}.`}${err.params.missingProperty}: required key is missing`;
    default:
      return `${path}: ${err.message}`;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * A config document's schema and the checks a schema cannot express. `T` is
 * derived from `schema` where the schema is written (json-schema-to-ts
 * `FromSchema`), so the type and what ajv accepts cannot drift; no config
 * type is written by hand.
 */
export interface ConfigSchema<T> {
  name: string;
  schema: Readonly<Record<string, unknown>>;
  /** Checks a schema cannot express (cross-references); returns problems as "path: what". */
  check?(config: T): string[];
}

/**
 * The config of one role key alone (`{log: {...}}`), validated as the role
 * validates that key, so problems carry the same paths: how a component
 * package and its tests check a part's config without importing a role.
 * `key` also names the compiled schema, so one key has one schema.
 */
export function partConfigSpec<T>(key: string, schema: Record<string, unknown>, check?: (config: T) => string[]): ConfigSchema<T> {
  return { name: `part:${key}`, schema: { type: 'object', additionalProperties: false, properties: { [key]: schema } }, check };
}

/** Validates `input` (a parsed document), fills defaults, freezes it. Throws ConfigError listing every problem. */
export function validateConfig<T>(spec: ConfigSchema<T>, input: unknown, source = 'config'): Readonly<T> {
  const copy = structuredClone(input ?? {});
  if (!ajv.getSchema(spec.name)) ajv.addSchema(spec.schema, spec.name);
  const validate = ajv.getSchema(spec.name);
  if (!validate) throw new ConfigError(`Schema ${spec.name} could not be compiled.`);
  if (!validate(copy)) {
    // A discriminated union also declares its tag as required and as an enum of the
    // known values; those errors name the problem, the discriminator's repeat it.
    const problems = (validate.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'discriminator').map(describe);
    throw new ConfigError(`Invalid ${spec.name} configuration in ${source}:\n  - ${problems.join('\n  - ')}`, problems);
  }
  const problems = spec.check?.(copy as T) ?? [];
  if (problems.length) throw new ConfigError(`Invalid ${spec.name} configuration in ${source}:\n  - ${problems.join('\n  - ')}`, problems);
  return deepFreeze(copy as T);
}

/** Reads a YAML (or JSON) file and validates it. */
export function loadConfigFile<T>(spec: ConfigSchema<T>, path: string): Readonly<T> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`Config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return validateConfig(spec, doc, path);
}
