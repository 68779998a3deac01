/**
 * Retry delays: exponential with "full jitter" (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"), capped. Pure, so schedulers that keep
 * their own timers (the forwarder's chunk queue) can use it; call sites that
 * simply retry one async call use the same numbers.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(opts.initialMs / 2, Math.floor(random() * ceiling));
}
