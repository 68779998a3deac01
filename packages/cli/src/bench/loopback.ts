/**
 * What the benches need around the processes they start: a free loopback
 * port, waiting for /healthz, a child's peak RSS and CPU seconds, stopping
 * it, and stopping every one of them when the bench itself is told to stop.
 *
 * The test suite has its own kit (@tributary/test-kit); the product never
 * imports test code, so the few lines both need are kept once on each side.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The processes the bench started that are still running (`track`). */
const children = new Set<ChildProcess>();
let stopping = false;

/** Registers a child the bench started, so that a SIGTERM or SIGINT to the bench stops it too (`stopChildrenOnSignal`). */
export function track<T extends ChildProcess>(child: T): T {
  if (child.exitCode === null && child.signalCode === null) {
    children.add(child);
    child.once('exit', () => children.delete(child));
  }
  return child;
}

let signalsHandled = false;

/**
 * From now on a SIGTERM or SIGINT to the bench SIGKILLs every process it
 * started and still running (forwarders, aggregators, receivers, Fluent Bit,
 * s3rver), then exits with 128 + the signal's number: a bench stopped
 * half-way leaves nothing running, whoever stops it.
 */
export function stopChildrenOnSignal(): void {
  if (signalsHandled) return; // once per process, however many benches it runs
  signalsHandled = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => () => {
    if (stopping) return;
    stopping = true;
    for (const child of children) child.kill('SIGKILL');
    process.stderr.write(`bench: ${signal}: stopped ${children.size} process(es) it had started.\n`);
    process.exit(code);
  };
  process.once('SIGTERM', onSignal('SIGTERM', 143));
  process.once('SIGINT', onSignal('SIGINT', 130));
}

/**
 * A port that was free a moment ago, for child processes that must be told
 * their port before they start. Chosen outside the kernel's ephemeral range,
 * so an outgoing connection cannot take it before the child binds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_BLOCK_START + (nextPort++ % PORT_BLOCK_SIZE);
    if (await canBind(port)) return port;
  }
  throw new Error(`No free port in ${PORT_BLOCK_START}-${PORT_BLOCK_START + PORT_BLOCK_SIZE - 1}.`);
}

const PORT_BLOCK_START = 15000;
const PORT_BLOCK_SIZE = 2000;
let nextPort = Math.floor(Math.random() * PORT_BLOCK_SIZE);

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

/** Signals a child (SIGKILL unless told otherwise) and resolves once it has exited; at once when it already has. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}
