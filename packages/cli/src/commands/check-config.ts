import { type AggregatorConfig, aggregatorConfigSpec } from '@tributary/aggregator';
import { ConfigError, type ConfigSchema, loadConfigFile } from '@tributary/core';
import {
  DEFAULT_CHUNK_LIMIT_BYTES,
  type ForwarderConfig,
  MAX_CHUNK_LIMIT_BYTES,
  forwarderConfigSpec,
  largestChunkFrameBytes,
} from '@tributary/forwarder';

const specs: Record<string, ConfigSchema<unknown>> = {
  forwarder: forwarderConfigSpec as ConfigSchema<unknown>,
  aggregator: aggregatorConfigSpec as ConfigSchema<unknown>,
};

/**
 * Limits that disagree across hops: a chunk the forwarder acked and then can
 * never deliver, because the next hop's limit refuses it on every retry.
 */
export function limitWarnings(role: string, config: unknown): string[] {
  const warnings: string[] = [];
  if (role === 'aggregator') {
    const forward = (config as AggregatorConfig).forward;
    const limits: Array<[string, number, string]> = [
      ['forward.max_frame_bytes', forward.max_frame_bytes, 'frames'],
      ['forward.max_decompressed_bytes', forward.max_decompressed_bytes, 'gzip chunks that inflate to'],
    ];
    for (const [key, value, what] of limits) {
      if (value >= largestChunkFrameBytes(MAX_CHUNK_LIMIT_BYTES)) continue;
      const safe = Math.floor((value - largestChunkFrameBytes(0)) / 2);
      warnings.push(
        value < largestChunkFrameBytes(DEFAULT_CHUNK_LIMIT_BYTES)
          ? `${key} (${value}) refuses ${what} of ${largestChunkFrameBytes(DEFAULT_CHUNK_LIMIT_BYTES)} bytes, which forwarders with the default buffer.chunk_limit_bytes (${DEFAULT_CHUNK_LIMIT_BYTES}) send: their chunks would be retried forever. Raise it to at least ${largestChunkFrameBytes(MAX_CHUNK_LIMIT_BYTES)}.`
          : `${key} (${value}) refuses the chunks of forwarders whose buffer.chunk_limit_bytes is above ${Math.max(0, safe)}; keep theirs at or below that, or raise this to ${largestChunkFrameBytes(MAX_CHUNK_LIMIT_BYTES)}.`,
      );
    }
  }
  if (role === 'forwarder') {
    const c = config as ForwarderConfig;
    if (largestChunkFrameBytes(c.buffer.chunk_limit_bytes) > c.buffer.max_bytes) {
      warnings.push(
        `buffer.max_bytes (${c.buffer.max_bytes}) is smaller than one batch of chunks can be (${largestChunkFrameBytes(c.buffer.chunk_limit_bytes)} bytes with buffer.chunk_limit_bytes ${c.buffer.chunk_limit_bytes}): such a batch is never accepted.`,
      );
    }
  }
  return warnings;
}

/** Prints whether a config file is valid, and every problem when not, then any cross-hop limit warnings. Returns the exit code. */
export function checkConfig(file: string, role: string): number {
  const spec = specs[role];
  if (!spec) {
    console.error(`Unknown role "${role}" (known: ${Object.keys(specs).join(', ')}).`);
    return 2;
  }
  try {
    const config = loadConfigFile(spec, file);
    console.log(`${file}: valid ${role} configuration.`);
    for (const w of limitWarnings(role, config)) console.log(`warning: ${w}`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}
