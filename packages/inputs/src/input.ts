/**
 * The one shape every input has. A role holds an `Input[]`: it starts each
 * with the next stage's `consume` and stops each on SIGTERM; it never sees
 * the server behind it.
 */
import type { Consume as CoreConsume, Input as CoreInput, Logger, Registry } from '@tributary/core';
import { type AdmissionLimits, DEFAULT_ADMISSION, type ForwardChunk } from '@tributary/forward-protocol';

/** The next stage, for chunks of the forward protocol (see core's `Consume`). */
export type Consume = CoreConsume<ForwardChunk>;

/** An input of forward-protocol chunks (core's `Input`). */
export type Input = CoreInput<ForwardChunk>;

/** What a role gives an input besides its config: counters, and the role's limits and checks. */
export interface InputContext {
  logger: Logger;
  /** A request or connection refused, by error code. */
  onRefused(code: string): void;
  /** Chunks `consume` accepted (and were acked); for the role's counters. */
  onAccepted?(chunks: ForwardChunk[]): void;
  /**
   * Leaves out chunks whose id was acked before (the forwarder's memory of
   * acked chunk ids); they are acked again without `consume`. Used by inputs
   * whose chunks carry ids (forward).
   */
  skipAcked?(chunks: ForwardChunk[]): Promise<ForwardChunk[]>;
  /** True while the next stage takes nothing more: a request input answers 503 at once (http). */
  isFull?(): boolean;
  /**
   * The forwarder's buffer chunk limit: one event larger than it is refused,
   * and a batch is handed to `consume` in pieces of at most this many bytes
   * per tag, so no chunk the buffer seals outgrows what aggregators accept.
   * Unset at the aggregator (its log takes a batch whole).
   */
  chunkLimitBytes?: number;
  /**
   * `consume` keeps no reference to a batch's chunks once it resolved (the
   * aggregator: its log has written them; the forwarder: its buffer keeps
   * no view of what it appended), so an input may reuse their memory.
   */
  consumeReleasesBuffers?: boolean;
  /** The role's metrics registry, for an input's own metrics (tail: files, lag, rotations). */
  registry?: Registry;
}

/** `address` read before `start` resolved. */
export function notListening(name: string): Error {
  return new Error(`The ${name} input is not listening; read its address after start() resolved.`);
}

/** What every input admits: the protocol's defaults, and one event at most `chunkLimitBytes` when the role sets it. */
export function admissionFor(ctx: InputContext): AdmissionLimits {
  return ctx.chunkLimitBytes === undefined ? DEFAULT_ADMISSION : { ...DEFAULT_ADMISSION, maxEventBytes: ctx.chunkLimitBytes };
}
