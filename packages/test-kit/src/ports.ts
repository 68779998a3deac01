/** Free loopback ports for servers that must be told their port before they start. */
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
