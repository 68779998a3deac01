/** A private redis-server for tests that need a real one. */
import { spawn } from 'node:child_process';
import { freePort } from './ports';

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
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL'); // never leave a half-started server behind
      throw new Error(`redis-server did not start:\n${out}`);
    }
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
