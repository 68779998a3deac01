/**
 * A private Kafka broker for tests that stop and start it (faults), from
 * ../shared/kafka (Apache Kafka 2.1.1 with ZooKeeper; its start.sh and
 * stop.sh act only on the WORKDIR given, by recorded PIDs). The suite's
 * shared broker (KAFKA_BROKERS, test/kafka-broker.js) is left alone.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports';

const run = promisify(execFile);

/** Where the broker's scripts are, or null in a clone without ../shared/kafka (tests then skip). */
export const KAFKA_HOME: string | null = (() => {
  const home = process.env.TRB_TEST_KAFKA_HOME ?? resolve(__dirname, '..', '..', '..', '..', 'shared', 'kafka');
  return existsSync(join(home, 'start.sh')) ? home : null;
})();

export interface LocalKafka {
  brokers: string;
  /** Stops the broker and ZooKeeper (SIGTERM, then SIGKILL after 30 s); the data stays for `start`. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data, and resolves once it leads its partitions again. */
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

export async function startKafka(): Promise<LocalKafka> {
  const home = KAFKA_HOME;
  if (!home) throw new Error('No Kafka broker scripts at ../shared/kafka.');
  const work = mkdtempSync(join(tmpdir(), 'trb-kafka-'));
  const env = { ...process.env, KAFKA_PORT: String(await freePort()), ZK_PORT: String(await freePort()) };
  const start = async () => {
    try {
      await run('bash', [join(home, 'start.sh'), work], { env, timeout: 180_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`The Kafka broker did not start: ${e.message}\n${e.stderr ?? ''}`);
    }
  };
  const stop = async () => {
    await run('bash', [join(home, 'stop.sh'), work], { timeout: 90_000 });
  };
  await start();
  return {
    brokers: `127.0.0.1:${env.KAFKA_PORT}`,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
