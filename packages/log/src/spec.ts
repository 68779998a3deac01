/**
 * What a durable log type gives the aggregator: its config schema and its
 * factory. The registry (registry.ts) lists the specs; the `log` config
 * schema, the `LogConfig` type, the log `Aggregator.start` opens and the
 * configuration reference all derive from that one list.
 */
import type { ComponentSpec, Logger } from '@tributary/core';
import type { DurableLog } from './durable-log';
import type { KafkaLogOptions } from './kafka-log';

export interface LogContext {
  logger: Logger;
  /** A Kafka client to use instead of one made from the config (tests hand in a fake cluster). */
  kafkaClient?: KafkaLogOptions['client'];
}

/** What a log spec makes: the log, not yet started, and the backlog bound ingest applies in front of it. */
export interface LogPart {
  log: DurableLog;
  /**
   * While egress is this many bytes behind (`log.backlogBytes()`), ingest
   * waits before it appends. 0: no bound (a log whose retention is the buffer).
   */
  maxBacklogBytes: number;
}

/**
 * One log type. `schema` is the whole `log` object of the type (`type` as a
 * `const`, `additionalProperties: false`); `C` is derived from it with
 * `FromSchema`. `create` maps the config to the log's options and does no
 * I/O: the caller starts the log and closes it when a later step fails.
 */
export interface LogSpec<C = unknown> extends ComponentSpec<C, LogContext, LogPart> {
  create(config: C, ctx: LogContext): LogPart;
}
