import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@tributary/core';
import { forwarderConfigSpec } from './config';
import { Forwarder } from './forwarder';

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
const portOf = (s: Server) => (s.address() as { port: number }).port;

test('a start that fails on a taken port stops what it had started: the forward port is free again and the buffer reopens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-start-'));
  const taken = await listen();
  const probe = await listen();
  const forwardPort = portOf(probe);
  await close(probe);
  try {
    const config = validateConfig(forwarderConfigSpec, {
      forward: { port: forwardPort, udp_heartbeat: false },
      http: { port: portOf(taken) },
      buffer: { path: dir },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: 1 }] },
    });
    await expect(Forwarder.start(config, silentLogger)).rejects.toThrow(/EADDRINUSE/);
    await close(await listen(forwardPort));

    const retried = await Forwarder.start({ ...config, http: { ...config.http, port: 0 } }, silentLogger);
    expect(retried.ports.forward).toBe(forwardPort);
    await retried.stop();
  } finally {
    await close(taken);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a start whose forward port is taken rejects, and a retry on a free port starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-forwarder-start-'));
  const taken = await listen();
  try {
    const config = validateConfig(forwarderConfigSpec, {
      forward: { port: portOf(taken) },
      http: { enabled: false },
      buffer: { path: dir },
      metrics: { port: 0 },
      output: { servers: [{ host: '127.0.0.1', port: 1 }] },
    });
    await expect(Forwarder.start(config, silentLogger)).rejects.toThrow(/EADDRINUSE/);
    const retried = await Forwarder.start({ ...config, forward: { ...config.forward, port: 0 } }, silentLogger);
    expect(retried.ports.http).toBeNull();
    await retried.stop();
  } finally {
    await close(taken);
    rmSync(dir, { recursive: true, force: true });
  }
});
