/**
 * What a filter type gives the roles: its config schema and its factory
 * (core's ComponentSpec), plus the checks a schema cannot express (every
 * regex compiles and is not prone to catastrophic backtracking). The
 * registry (registry.ts) lists the specs; the `filters:` schema, the
 * `FilterConfig` type and the configuration reference derive from it.
 */
import type { ComponentSchema, ComponentSpec, Logger } from '@tributary/core';
import type { JSONSchema } from 'json-schema-to-ts';
import type { RawRecord } from './raw-record';
import type { RegexChecks } from './regex';

/** What a filter's check is given: the environment (`${env.X}`, HMAC keys) and the regex collector. */
export interface CheckContext {
  env: Readonly<Record<string, string | undefined>>;
  regexes: RegexChecks;
}

/** `match`: every filter has one, in the syntax of egress routes. */
export const filterMatch = {
  type: 'string',
  minLength: 1,
  default: '**',
  description: 'Tag pattern of the events the filter applies to (as egress routes: `a.*`, `a.**`, `{x,y}`, several separated by spaces).',
} as const;

/** One event as a filter sees it. `record` is the filter's to change; `time` is the event time in seconds. */
export interface FilterEvent {
  readonly tag: string;
  readonly time: number;
  /** The event time as RFC 3339 with nine fraction digits (`${time}`), computed only when asked. */
  timeText(): string;
  record: Record<string, unknown>;
}

/** What one filter did, summed per filter since it was made; the role turns them into metrics. */
export interface FilterCounts {
  /** Events the filter dropped (grep, throttle). */
  dropped: number;
  /** Events the filter could not process and passed on unchanged (a value that did not parse, metadata not yet known). */
  failed: number;
}

export interface FilterContext {
  /** `${hostname}`. */
  hostname: string;
  /** `${env.NAME}`, resolved when the filter is made. */
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
}

export interface Filter {
  /** False when the filter only keeps or drops events (grep, throttle): a kept event's bytes are copied as they came. */
  readonly changes: boolean;
  /** The record to pass on (the event's own, changed, or a new one), or null to drop the event. */
  apply(event: FilterEvent, counts: FilterCounts): Record<string, unknown> | null;
  /**
   * The same on the record's bytes (top-level keys only), where the filter's
   * config allows it; returns false to drop. When every filter a tag matches
   * has it, records are not decoded whole. Must change the record exactly as
   * `apply` would (`event.record` is empty here).
   */
  applyRaw?(record: RawRecord, event: FilterEvent, counts: FilterCounts): boolean;
  /** Resolves once the filter's first background read (metadata) ended, succeeded or not; never rejects. */
  ready?(): Promise<void>;
  /** Stops background work (metadata refresh). */
  close?(): void;
}

/**
 * One filter type. `schema` is the whole config object of the type (`type`
 * as a `const`, `match`, the type's keys, `additionalProperties: false`);
 * `C` is derived from it with json-schema-to-ts `FromSchema`.
 */
export interface FilterSpec<C = unknown> extends ComponentSpec<C, FilterContext, Filter> {
  readonly schema: ComponentSchema & JSONSchema;
  /**
   * Whether the same events always give the same output (grep, record,
   * parser, mask): only such filters may run at egress, where a replay must
   * write what the first run wrote.
   */
  readonly deterministic: boolean;
  /** Problems a schema cannot express, as "<path>.<key>: what" (`path` is the filter's, e.g. `filters[2]`). */
  check?(config: C, path: string, ctx: CheckContext): string[];
  create(config: C, ctx: FilterContext): Filter;
}
