import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, validateConfig } from '@tributary/core';
import { Aggregator } from './aggregator';
import { aggregatorConfigSpec } from './config';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test('a start that fails late (its metrics port is taken) undoes what it built: the forward port it had bound is free again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trb-agg-start-'));
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const busyPort = (busy.address() as AddressInfo).port;
  const forwardPort = await freePort();
  const config = (metricsPort: number) =>
    validateConfig(aggregatorConfigSpec, {
      forward: { bind: '127.0.0.1', port: forwardPort, udp_heartbeat: false },
      log: { path: join(dir, 'log') },
      sinks: [{ name: 'file', type: 'file', path: join(dir, 'out') }],
      metrics: { bind: '127.0.0.1', port: metricsPort },
    });
  try {
    await expect(Aggregator.start(config(busyPort), silentLogger)).rejects.toThrow(/EADDRINUSE/);
    // the same forward port and log again: only possible if the failed start let go of them
    const agg = await Aggregator.start(config(0), silentLogger);
    expect(agg.ports.forward).toBe(forwardPort);
    await agg.stop();
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
