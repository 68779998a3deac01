// Starts and stops the real Kafka broker the test suite runs its Kafka legs on (jest globalSetup and
// globalTeardown, see jest.config.js). The broker is ../shared/kafka (Apache Kafka 2.1.1 with ZooKeeper,
// started with `start.sh WORKDIR`, stopped with `stop.sh WORKDIR`) on free loopback ports.
// - KAFKA_BROKERS already set: those brokers are used as they are (e.g. `docker compose up kafka`).
// - No ../shared/kafka (a user's clone): nothing starts, and the Kafka legs skip, saying so.
// - ../shared/kafka present: it must start; a failure stops the run with the broker's log tail.
const { execFileSync } = require('node:child_process');
const { existsSync, mkdtempSync, rmSync } = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const KAFKA_HOME = resolve(__dirname, '..', '..', 'shared', 'kafka');

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function setup() {
  if (process.env.KAFKA_BROKERS) {
    console.error(`\n[kafka] using KAFKA_BROKERS=${process.env.KAFKA_BROKERS}`);
    return;
  }
  if (!existsSync(join(KAFKA_HOME, 'start.sh'))) {
    console.error(`\n[kafka] no broker at ${KAFKA_HOME} and KAFKA_BROKERS is not set: the Kafka legs are skipped.`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'trb-kafka-'));
  const [kafkaPort, zkPort] = [await freePort(), await freePort()];
  const started = Date.now();
  let out;
  try {
    out = execFileSync('bash', [join(KAFKA_HOME, 'start.sh'), work], {
      env: { ...process.env, KAFKA_PORT: String(kafkaPort), ZK_PORT: String(zkPort) },
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      timeout: 180_000,
    });
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(`The Kafka broker at ${KAFKA_HOME} did not start (its log tail is above): ${err.message}`);
  }
  const line = out.trim().split('\n').pop() ?? '';
  if (!line.startsWith('KAFKA_BROKERS=')) throw new Error(`start.sh printed no KAFKA_BROKERS line (got "${line}").`);
  process.env.KAFKA_BROKERS = line.slice('KAFKA_BROKERS='.length);
  process.env.TRB_TEST_KAFKA_WORKDIR = work;
  // The fault tests start brokers of their own from here.
  process.env.TRB_TEST_KAFKA_HOME = KAFKA_HOME;
  console.error(`\n[kafka] broker started in ${((Date.now() - started) / 1000).toFixed(1)} s: KAFKA_BROKERS=${process.env.KAFKA_BROKERS}`);
}

async function teardown() {
  const work = process.env.TRB_TEST_KAFKA_WORKDIR;
  if (!work) return;
  try {
    execFileSync('bash', [join(KAFKA_HOME, 'stop.sh'), work], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 90_000 });
    console.error('[kafka] broker stopped');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

module.exports = { setup, teardown };
