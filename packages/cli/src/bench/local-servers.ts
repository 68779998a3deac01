/**
 * Loopback helpers shared by the benches and the test suite: a free port, a
 * private redis-server, waiting for /healthz, and a process's peak RSS.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A port that was free a moment ago, for servers that must be told their port
 * before they start (child processes, redis-server). Chosen outside the
 * kernel's ephemeral range, from a block of its own per jest worker, so two
 * test workers (or a server on port 0) are never handed the same port.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.JEST_WORKER_ID ?? 0);
  const base = 15000 + (worker % 8) * 2000;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = base + ((nextPort++ + attempt) % 2000);
    if (await canBind(port)) return port;
  }
  throw new Error(`No free port in ${base}-${base + 1999}.`);
}

let nextPort = Math.floor(Math.random() * 2000);

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Peak resident set size of a live process, in MB (Linux VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** CPU seconds (user + system) a live process has used so far (Linux /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Starts counting CPU seconds for this process (reported as `sender`) and the
 * given child processes; the returned function reads what each used since.
 */
export function startCpuMeter(children: Record<string, number>): () => Record<string, number> {
  const self = process.cpuUsage();
  const start = Object.entries(children).map(([name, pid]) => [name, pid, cpuSeconds(pid)] as const);
  return () => {
    const used = process.cpuUsage(self);
    const out: Record<string, number> = { sender: (used.user + used.system) / 1e6 };
    for (const [name, pid, before] of start) out[name] = cpuSeconds(pid) - before;
    return out;
  };
}

/** Resolves once http://127.0.0.1:<port>/healthz answers 200 (at most 15 s). */
export async function waitHealthy(port: number, what: string, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!isAlive()) throw new Error(`${what} exited before it became healthy.`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not become healthy within 15 s.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a private redis-server on a free loopback port (no persistence); `stop` ends it by PID. */
export async function startRedis(): Promise<{ port: number; pid: number; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let failed: Error | null = null;
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.on('error', (err) => {
    failed = new Error(
      `redis-server could not start (${err.message}); install it (apt-get install redis-server, or run scripts/ensure-system-deps.js).`,
    );
  });
  const deadline = Date.now() + 10_000;
  while (!out.includes('Ready to accept connections')) {
    if (failed) throw failed;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    pid: child.pid as number,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
