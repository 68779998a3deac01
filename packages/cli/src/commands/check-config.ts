import { type AggregatorConfig, aggregatorConfigSpecFor } from '@tributary/aggregator';
import { DEFAULT_CHUNK_LIMIT_BYTES, MAX_CHUNK_LIMIT_BYTES, largestChunkFrameBytes } from '@tributary/buffer';
import { ConfigError, type ConfigSchema, loadConfigFile } from '@tributary/core';
import { type ForwarderConfig, forwarderConfigSpec } from '@tributary/forwarder';
import { type SinkRegistry, sinkRegistry } from '@tributary/sinks';

function specsFor(sinks: SinkRegistry): Record<string, ConfigSchema<unknown>> {
  return {
    forwarder: forwarderConfigSpec,
    aggregator: aggregatorConfigSpecFor(sinks),
  };
}

/**
 * Limits that disagree across hops: a chunk the forwarder acked and then can
 * never deliver, because the next hop's limit refuses it on every retry.
 */
export function limitWarnings(role: string, config: unknown): string[] {
  const warnings: string[] = [];
  const http = (config as { http?: ForwarderConfig['http'] }).http;
  if (http?.enabled && http.body_limit_bytes > http.max_pending_bytes) {
    warnings.push(
      `http.body_limit_bytes (${http.body_limit_bytes}) is above http.max_pending_bytes (${http.max_pending_bytes}): a request between the two is refused with 503 on every retry. Keep body_limit_bytes at or below max_pending_bytes.`,
    );
  }
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

/**
 * The claim-wait rule: before an aggregator acks a chunk it may wait for the
 * chunk's dedupe claim up to `claim_wait_ms` (another node holds it) plus one
 * Redis `command_timeout_ms` (Redis hangs). A forwarder whose
 * `output.ack_timeout_ms` is not above that resends the chunk meanwhile — to
 * another node, which waits the same — so an outage or a slow claim turns into
 * a storm of resends (and, with fail_open, duplicates). docs/operations.md.
 */
export function timeoutWarnings(aggregator: AggregatorConfig, forwarder: ForwarderConfig): string[] {
  const d = aggregator.dedupe;
  if (d.type === 'none') return [];
  const commandTimeout = d.type === 'redis' ? d.redis.command_timeout_ms : 0;
  const worst = d.claim_wait_ms + commandTimeout;
  const ack = forwarder.output.ack_timeout_ms;
  if (worst < ack) return [];
  const parts =
    d.type === 'redis'
      ? `dedupe.claim_wait_ms (${d.claim_wait_ms}) + dedupe.redis.command_timeout_ms (${commandTimeout})`
      : `dedupe.claim_wait_ms (${d.claim_wait_ms})`;
  const failOpen = d.type === 'redis' && d.on_unavailable === 'fail_open';
  return [
    `the aggregator may hold a chunk for ${parts} = ${worst} ms before it acks, not less than the forwarder's output.ack_timeout_ms (${ack}): the forwarder resends chunks still waiting for their claim${failOpen ? ', and with on_unavailable fail_open a Redis outage writes them twice' : ''}. Keep the sum well below ack_timeout_ms (docs/operations.md, "Claim wait and ack timeout").`,
  ];
}

/**
 * Prints whether a config file is valid, and every problem when not, then any
 * cross-hop limit warnings. With `withFile` (a config of the other role), also
 * checks that file and the timeouts between the two. `sinks` is the set of
 * sink types an aggregator config may use. Returns the exit code.
 */
export function checkConfig(file: string, role: string, withFile?: string, sinks: SinkRegistry = sinkRegistry): number {
  const specs = specsFor(sinks);
  const spec = specs[role];
  if (!spec) {
    console.error(`Unknown role "${role}" (known: ${Object.keys(specs).join(', ')}).`);
    return 2;
  }
  try {
    const config = loadConfigFile(spec, file);
    console.log(`${file}: valid ${role} configuration.`);
    for (const w of limitWarnings(role, config)) console.log(`warning: ${w}`);
    if (role === 'aggregator') {
      const list = (config as AggregatorConfig).sinks.map((s) => `${s.name} (${s.type})`).join(', ');
      console.log(`sinks: ${list || 'none'}; sink types: ${sinks.map((s) => s.type).join(', ')}.`);
    }
    if (withFile) {
      const other = role === 'aggregator' ? 'forwarder' : 'aggregator';
      const peer = loadConfigFile(specs[other], withFile);
      console.log(`${withFile}: valid ${other} configuration.`);
      const [agg, fwd] = (role === 'aggregator' ? [config, peer] : [peer, config]) as [AggregatorConfig, ForwarderConfig];
      for (const w of timeoutWarnings(agg, fwd)) console.log(`warning: ${w}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}
