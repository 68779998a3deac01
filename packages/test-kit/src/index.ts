/**
 * @tributary/test-kit: what tests need around the product and nothing the
 * product runs. Local servers (a private redis-server, s3rver, a Firehose
 * endpoint, a Forward server that records), load and fault tools (a producer
 * that counts acks, a proxy that drops acks), process helpers (free ports,
 * start a role and wait for /healthz, peak RSS) and readers for what a file
 * sink wrote.
 *
 * Tests import it; no product package may (packages/test-kit/src/import-boundary.test.ts).
 */
export { startAckDroppingProxy } from './ack-dropping-proxy';
export { IMDS_IDENTITY, type ImdsStandIn, startImds } from './imds';
export { type FirehoseEndpoint, startFirehoseEndpoint } from './firehose-endpoint';
export { KAFKA_HOME, type LocalKafka, startKafka } from './kafka';
export { countIds, readOutput } from './output';
export { freePort } from './ports';
export { CLI, type Started, exited, peakRssMb, startRole, startUp, tempDir, waitHealthy } from './processes';
export { type ProducerStats, produce } from './producer';
export { type RecordedEvent, startRecordingServer, waitFor } from './recording-server';
export { startRedis } from './redis';
export { type LocalS3, startS3rver } from './s3rver';
