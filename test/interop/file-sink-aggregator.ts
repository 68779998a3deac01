import { join } from 'node:path';

/**
 * The aggregator the interop tests send to: embedded log and dedupe, a file
 * sink at `<dir>/out`, objects cut after 200 ms so records show quickly.
 */
export function fileSinkAggregator(dir: string, forwardPort: number, metricsPort: number) {
  return {
    forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
    dedupe: { type: 'embedded' },
    log: { path: join(dir, 'log') },
    egress: { max_wait_ms: 50, objects: { age_ms: 200 } },
    sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
    metrics: { port: metricsPort },
    log_level: 'warn',
  };
}
