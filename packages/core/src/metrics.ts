/**
 * The operations endpoint: Prometheus metrics (prom-client), /healthz and
 * /readyz, on its own port so it answers while the data ports are saturated.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tributary_process_' });
  return registry;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Why the node is not ready, or null when it is. */
  notReady(): string | null;
}

export async function startOpsServer(opts: OpsServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      opts.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(body);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else if (req.url === '/readyz') {
      const reason = opts.notReady();
      res.writeHead(reason ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(reason ? `not ready: ${reason}\n` : 'ready\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
