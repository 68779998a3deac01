/** Measurement helpers shared by every bench: rates, percentiles and peak RSS. */
export interface BenchResult {
  name: string;
  events: number;
  bytes: number;
  seconds: number;
  p99Ms?: number;
  peakRssMb: number;
  /** Events the sender had acked, when `events` counts what arrived at the far end. */
  sentEvents?: number;
  /** CPU seconds used by each process taking part, e.g. { sender: 9.1, forwarder: 8.7 }. */
  cpu?: Record<string, number>;
}

export class RssSampler {
  private peak = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly extra: () => number = () => 0) {
    this.timer = setInterval(() => this.sample(), 50);
    this.timer.unref();
  }

  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss() + this.extra());
  }

  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peak / (1024 * 1024);
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function formatResult(r: BenchResult): string {
  const eps = r.events / r.seconds;
  const mbps = r.bytes / r.seconds / 1e6;
  const p99 = r.p99Ms === undefined ? '' : `  p99 ${r.p99Ms.toFixed(2)} ms`;
  const cpu = r.cpu
    ? `\n  cpu seconds over ${r.seconds.toFixed(1)} s wall: ${Object.entries(r.cpu)
        .map(([who, s]) => `${who} ${s.toFixed(1)}`)
        .join(', ')}`
    : '';
  return `${r.name.padEnd(48)} ${Math.round(eps).toLocaleString('en-US').padStart(12)} events/s  ${mbps.toFixed(1).padStart(8)} MB/s${p99}  peak RSS ${r.peakRssMb.toFixed(0)} MB${cpu}`;
}
